"""Alembic revision scripts of the agent's local store (oldest first)."""
