"""Alembic migrations of the agent's local store, run programmatically when the store opens."""
