"""``predis-fl certs init`` and ``predis-fl api create-token|migrate`` (serve: test_api_server)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from federation.cli import main
from federation.server.registry import (
    ApiToken,
    authenticate,
    head_revision,
    make_engine,
    session_factory,
    token_digest,
)
from privacy import key_id, load_private_key


def test_certs_init_creates_a_private_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    assert main(["certs", "init", "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    private = Path(payload["signing_key"])
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert payload["key_id"] == key_id(load_private_key(private))
    assert main(["certs", "init", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["certs", "init", "--out", str(out), "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["key_id"] != payload["key_id"]


def test_create_token_prints_once_and_stores_a_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'registry.db'}"  # created and migrated on the fly
    argv = ["api", "create-token", "--database", url, "--role", "customer", "--customer", "acme"]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    token = payload["token"]
    assert token.startswith("pfl_") and len(token) >= 4 + 43  # >= 256 random bits
    assert main(argv) == 0
    human = capsys.readouterr()
    second = human.out.strip()
    assert second.startswith("pfl_") and second != token and "shown only now" in human.err
    engine = make_engine(url)
    with session_factory(engine)() as session:
        rows = session.scalars(select(ApiToken)).all()
        assert sorted(r.digest for r in rows) == sorted([token_digest(token), token_digest(second)])
        principal = authenticate(session, token)
        assert principal is not None and principal.customer_id == "acme"
    engine.dispose()
    assert main(["api", "create-token", "--database", url, "--role", "customer"]) == 2
    assert "needs a customer id" in capsys.readouterr().err


def test_migrate_and_bad_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["api", "migrate", "--database", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "revision": head_revision(),
        "head": head_revision(),
    }
    assert main(["api", "migrate", "--database", "mysql://h/db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("predis-fl: error: unsupported database") and err.count("\n") == 1
