"""Alembic migrations of the registry (run through ``upgrade_database``)."""
