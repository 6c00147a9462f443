"""Stylization and Monet answers: their sampled quality scores and user ratings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_style_answers",
        sa.Column("answer_id", sa.String(64), primary_key=True),
        sa.Column("at", sa.Float, nullable=False, index=True),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False, index=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("pod", sa.String(128), nullable=False),
        sa.Column("scores", sa.Text),  # JSON {measure: value}, from the sampled scorer
        sa.Column("scored_at", sa.Float),
        sa.Column("rating", sa.Integer),  # 1..5, one per answer
        sa.Column("rated_at", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("serving_style_answers")
