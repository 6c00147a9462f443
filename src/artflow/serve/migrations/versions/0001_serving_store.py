"""The serving store: answers, feedback, A/B assignments, Gatys jobs, admin state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_answers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.Float, nullable=False, index=True),
        sa.Column("variant", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32)),
        sa.Column("artist", sa.String(200), nullable=False),
        sa.Column("pod", sa.String(128), nullable=False),
    )
    op.create_table(
        "serving_feedback",
        # the primary key is what makes a second feedback a 409 on every pod
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("created", sa.Float, nullable=False, index=True),
        sa.Column("variant", sa.String(64), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32)),
        sa.Column("artist", sa.String(200), nullable=False),
        sa.Column("correct", sa.Boolean, nullable=False),
        sa.Column("true_artist", sa.String(200)),
        sa.Column("pod", sa.String(128), nullable=False),
    )
    op.create_table(
        "serving_assignments",
        sa.Column("client", sa.String(64), primary_key=True),  # SHA-256 of the client key
        sa.Column("experiment", sa.String(200), primary_key=True),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("created", sa.Float, nullable=False, index=True),
    )
    op.create_table(
        "serving_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("backbone", sa.String(32)),
        sa.Column("losses", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("pod", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.LargeBinary),
        sa.Column("created", sa.Float, nullable=False, index=True),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "serving_admin",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "serving_admin_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("caller", sa.String(128), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in (
        "serving_admin_failures",
        "serving_admin",
        "serving_jobs",
        "serving_assignments",
        "serving_feedback",
        "serving_answers",
    ):
        op.drop_table(table)
