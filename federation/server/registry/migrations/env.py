"""Alembic environment of the registry: migrates through the engine the caller passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from federation.server.registry.models import Base


def run_migrations_online() -> None:
    """Run the migrations on the engine in ``config.attributes["engine"]``."""
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("run registry migrations through upgrade_database(url)")
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
