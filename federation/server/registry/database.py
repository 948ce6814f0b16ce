"""Engines and sessions for the registry: SQLite by default, PostgreSQL through the same code.

SQLite connections are set up for a server that must not lose an acknowledged write: WAL
journal (readers never block the writer), ``synchronous=FULL`` (a commit is on disk before it
returns, so a crash of the API process or of the machine after a 2xx reply loses nothing),
foreign keys enforced and a busy timeout instead of immediate "database is locked" errors.
PostgreSQL URLs (``postgresql://`` or ``postgres://``) are given the psycopg 3 driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from federation.server.registry.errors import RegistryConfigError

DEFAULT_DATABASE_URL = "sqlite:///predis-registry/registry.db"
"""Development default: a SQLite file under ``./predis-registry`` (refused in production)."""
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the project's driver for it.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3);
    ``sqlite://`` URLs are kept. Other back ends are refused.

    Raises
    ------
    RegistryConfigError
        If the URL cannot be parsed or names an unsupported database.
    """
    text = url if isinstance(url, URL) else str(url)
    if isinstance(text, str) and text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = make_url(text)
    except ArgumentError as exc:
        raise RegistryConfigError(f"invalid database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise RegistryConfigError(
        f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the registry's connection settings.

    Parameters
    ----------
    url
        ``sqlite:///PATH`` (the parent folder is created), ``sqlite://`` (in memory, one shared
        connection) or ``postgresql://...``.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine` (e.g. ``pool_size``).

    Raises
    ------
    RegistryConfigError
        If the URL is invalid or unsupported.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
