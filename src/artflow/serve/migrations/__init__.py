"""Alembic migrations of the serving store (artflow.serve.store)."""
