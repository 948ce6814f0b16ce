"""API settings (environment, production guard) and the authentication cache."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from federation.server.api import ApiSettings, DatabaseSettings, create_app, get_settings
from federation.server.api.auth_cache import AuthCache
from federation.server.registry import Principal, Role, revoke_token
from tests.test_registry_support import api_settings, bearer, make_tokens, signing_key_file


def test_environment_with_prefix_and_nested_delimiter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PREDIS_API_PORT=9001\n")
    monkeypatch.setenv("PREDIS_API_DATABASE__URL", "postgresql://reg:s3cr3t-long@db/registry")
    monkeypatch.setenv("PREDIS_API_SIGNING__TRUSTED_KEYS", '["a.pub", "b.pub"]')
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert get_settings() is settings  # cached
    finally:
        get_settings.cache_clear()
    assert settings.port == 9001
    assert settings.signing.trusted_keys == [Path("a.pub"), Path("b.pub")]
    assert settings.database.url.get_secret_value().endswith("@db/registry")
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())


def test_production_refuses_default_secrets_and_paths(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as defaults:
        ApiSettings(mode="production")
    message = str(defaults.value)
    assert "DATABASE__URL is the development default" in message
    assert "ARTIFACTS__DIR is the development default" in message
    assert "no trusted signing key" in message
    with pytest.raises(ValidationError, match="well-known default"):
        ApiSettings(
            mode="production",
            database=DatabaseSettings(url=SecretStr("postgresql://postgres:postgres@db/r")),
            artifacts={"dir": tmp_path},  # type: ignore[arg-type]
            signing={"trusted_keys": [tmp_path / "k.pub"]},  # type: ignore[arg-type]
        )
    ok = ApiSettings(
        mode="production",
        database=DatabaseSettings(url=SecretStr("postgresql://reg:Xk2-9fQ-long@db/r")),
        artifacts={"dir": tmp_path},  # type: ignore[arg-type]
        signing={"trusted_keys": [tmp_path / "k.pub"]},  # type: ignore[arg-type]
    )
    assert ok.mode == "production"


def test_auth_cache_expires_and_evicts() -> None:
    principal = Principal(token_id=1, role=Role.ADMIN, customer_id=None)
    cache = AuthCache(ttl=0.05, max_entries=2)
    cache.put("a", principal)
    assert cache.get("a") == principal
    time.sleep(0.06)
    assert cache.get("a") is None
    cache.put("a", principal)
    cache.put("b", principal)
    cache.put("c", principal)
    assert len(cache) == 2 and cache.get("a") is None
    disabled = AuthCache(ttl=0)
    disabled.put("a", principal)
    assert disabled.get("a") is None
    with pytest.raises(ValueError):
        AuthCache(ttl=-1)


@pytest.mark.parametrize("ttl", [0.0, 30.0])
def test_revoked_token_stops_working_within_the_cache_ttl(tmp_path: Path, ttl: float) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    settings = api_settings(url, tmp_path, signing_key_file(tmp_path))
    settings = settings.model_copy(update={"auth_cache_seconds": ttl})
    app = create_app(settings)
    tokens = make_tokens(url)
    with TestClient(app) as client:
        assert client.get("/v1/models", headers=bearer(tokens.admin)).status_code == 200
        with app.state.sessions() as session:
            revoke_token(session, 1)  # the admin token
        expected = 401 if ttl == 0 else 200  # cached for ttl seconds
        assert client.get("/v1/models", headers=bearer(tokens.admin)).status_code == expected
        app.state.auth_cache.clear()
        assert client.get("/v1/models", headers=bearer(tokens.admin)).status_code == 401
    app.state.engine.dispose()
