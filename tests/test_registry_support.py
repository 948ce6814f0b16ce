"""Helpers shared by the registry and API tests (no tests here).

PostgreSQL: ``$PREDIS_TEST_POSTGRES_URL`` (a server CI started) or, failing that, a throwaway
local server started once per test session with ``initdb``/``pg_ctl`` (as an unprivileged user
when running as root) on a free loopback port, stopped at exit. Each test gets a fresh database.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from federation.server.api import ApiSettings, ArtifactSettings, DatabaseSettings, SigningSettings
from federation.server.registry import create_token, make_engine, session_factory
from privacy import generate_signing_key

BACKENDS = ("sqlite", "postgresql")


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def postgres_server() -> tuple[str | None, str]:
    """Return ``(admin URL, "")`` of a PostgreSQL server, or ``(None, reason it is missing)``."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg (PostgreSQL driver) is not installed: pip install 'psycopg[binary]'"
    env_url = os.environ.get("PREDIS_TEST_POSTGRES_URL")
    if env_url:
        return env_url, ""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None, (
            "no PostgreSQL server: set PREDIS_TEST_POSTGRES_URL or install PostgreSQL "
            "(initdb and pg_ctl not found)"
        )
    base = Path(tempfile.mkdtemp(prefix="predis-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if runuser is None or user is None:
            return None, "running as root without runuser or an unprivileged user for PostgreSQL"
        shutil.chown(base, user=user)
        prefix = [runuser, "-u", user, "--"]
    port = _free_port()
    data = base / "data"
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        start = ["-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "-o", options]
        subprocess.run(
            [*prefix, pg_ctl, *start, "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        return None, f"could not start a local PostgreSQL server: {exc}"

    def stop() -> None:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", ""


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def fresh_postgres_url() -> str:
    """Create an empty database on the test server and return its URL (skip if no server)."""
    admin_url, reason = postgres_server()
    if admin_url is None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    name = f"predis_test_{uuid.uuid4().hex[:12]}"
    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    url = make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False)


def database_url(backend: str, tmp_path: Path) -> str:
    """Return the URL of an empty database of ``backend`` (``sqlite`` or ``postgresql``)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return fresh_postgres_url()


@dataclass
class Tokens:
    """One token of each role (customers ``acme`` and ``globex``)."""

    admin: str
    server: str
    acme: str
    globex: str


def make_tokens(url: str) -> Tokens:
    """Create the tokens of :class:`Tokens` in the database at ``url`` (already migrated)."""
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            admin, _ = create_token(session, "admin")
            server, _ = create_token(session, "server")
            acme, _ = create_token(session, "customer", customer_id="acme")
            globex, _ = create_token(session, "customer", customer_id="globex")
    finally:
        engine.dispose()
    return Tokens(admin=admin, server=server, acme=acme, globex=globex)


def signing_key_file(directory: Path) -> Path:
    """Create a signing key in ``directory`` and return the private-key path."""
    path = directory / "keys" / "registry.pem"
    generate_signing_key(path)
    return path


def api_settings(url: str, tmp_path: Path, key_path: Path) -> ApiSettings:
    """Return API settings for the database at ``url`` with artifacts under ``tmp_path``."""
    return ApiSettings(
        database=DatabaseSettings(url=SecretStr(url)),
        artifacts=ArtifactSettings(dir=tmp_path / "artifacts"),
        signing=SigningSettings(key_file=key_path),
    )


def bearer(token: str) -> dict[str, str]:
    """Return the ``Authorization`` header of ``token``."""
    return {"Authorization": f"Bearer {token}"}
