"""Alembic environment of the agent store: runs on the connection the store hands over.

The store calls :func:`alembic.command.upgrade` with ``config.attributes["connection"]`` set, so
migrations run inside the store's own engine (its SQLite pragmas included); there is no
``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from federation.client.agent.orm import Base


def run_migrations_online() -> None:
    """Run the pending migrations on the connection given by the store."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("the agent store runs its migrations itself; do not call alembic")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if getattr(context, "config", None) is not None:  # run by alembic (not merely imported)
    run_migrations_online()
