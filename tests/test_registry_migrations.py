"""Alembic migrations: from an empty database to the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from federation.server.registry import (
    Base,
    database_revision,
    downgrade_database,
    head_revision,
    make_engine,
    normalize_url,
    upgrade_database,
)
from federation.server.registry.errors import RegistryConfigError
from tests.test_registry_support import BACKENDS, database_url

TABLES = {
    "ab_results",
    "adoption_records",
    "alembic_version",
    "api_tokens",
    "audit_log",
    "customers",
    "model_versions",
    "privacy_ledger",
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_empty_builds_the_models_schema(backend: str, tmp_path: Path) -> None:
    url = database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        assert database_revision(engine) is None
        assert set(inspect(engine).get_table_names()) == set()
        assert upgrade_database(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        assert upgrade_database(engine) == head_revision()  # idempotent
        downgrade_database(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert upgrade_database(url) == head_revision()  # by URL, on a fresh engine
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'r.db'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_urls_get_the_psycopg_driver_and_unknown_backends_are_refused() -> None:
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(RegistryConfigError, match="unsupported database"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(RegistryConfigError, match="invalid database URL"):
        normalize_url("::not a url::")
