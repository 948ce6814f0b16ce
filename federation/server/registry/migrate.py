"""Alembic migrations run from Python: ``upgrade_database(url)`` builds or updates the schema.

The migration scripts ship inside the package (``migrations/``), so a fresh database is created
by the first ``predis-fl api serve`` or ``predis-fl api migrate`` without an ``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from federation.server.registry.database import make_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic configuration that migrates through ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """Return the newest migration revision shipped with the package."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no registry migrations found")
    return head


def database_revision(engine: Engine) -> str | None:
    """Return the migration revision ``engine``'s database is at (``None`` if never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(url: str | URL | Engine, revision: str = "head") -> str:
    """Migrate the database at ``url`` (or through an engine) up to ``revision``.

    Safe to call on every start: a database already at the head is left unchanged.

    Parameters
    ----------
    url
        Database URL (see :func:`~federation.server.registry.database.make_engine`) or engine.
    revision
        Target revision (default: the newest).

    Returns
    -------
    str
        The revision the database is at afterwards.
    """
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
        current = database_revision(engine)
    finally:
        if engine is not url:
            engine.dispose()
    return current or ""


def downgrade_database(url: str | URL | Engine, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        command.downgrade(alembic_config(engine), revision)
    finally:
        if engine is not url:
            engine.dispose()
