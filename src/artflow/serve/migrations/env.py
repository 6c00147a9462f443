"""Alembic environment of the serving store: run on the connection artflow hands in.

`artflow.serve.store.migrate` opens the connection (SQLite in the project, or the cluster's
PostgreSQL) and passes it as `config.attributes["connection"]`; there is no alembic.ini.
On PostgreSQL the upgrade holds an advisory lock, so pods starting at once migrate once.
"""

from alembic import context
from sqlalchemy import text

VERSION_TABLE = "serving_alembic_version"  # not MLflow's alembic_version, should they share
MIGRATION_LOCK = 724_271_001  # pg_advisory_xact_lock key of this store's migrations

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.run_migrations()
