"""Settings of the adoption API (pydantic-settings: environment, ``.env``, then defaults).

Every field can be set from the environment with the ``PREDIS_API_`` prefix; nested fields use
``__`` (``PREDIS_API_DATABASE__URL``, ``PREDIS_API_SIGNING__TRUSTED_KEYS='["old.pub","new.pub"]'``).
A ``.env`` file in the working directory is read too. In ``production`` mode the service refuses
to start with the development defaults: the SQLite file and artifact folder under
``./predis-registry``, a database password from a list of well-known defaults, or no trusted
signing key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from federation.server.registry import DEFAULT_ARTIFACT_DIR, DEFAULT_DATABASE_URL
from privacy.signing import TrustedKeys, load_public_key, public_path

DEFAULT_SECRETS = frozenset(
    {"", "postgres", "password", "changeme", "change-me", "secret", "admin"}
)
"""Database passwords that production mode refuses."""


class DatabaseSettings(BaseModel):
    """Where the registry lives."""

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_DATABASE_URL),
        description="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB (secret: may "
        "hold a password)",
    )
    pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connection pool")
    in_threadpool: bool = Field(
        default=False,
        description="run queries in the thread pool (for a high-latency remote database) "
        "instead of on the event loop",
    )
    pre_ping: bool = Field(
        default=False,
        description="test each pooled PostgreSQL connection with a round trip before use; off, "
        "a connection dropped by the server fails one request with 503 (clients retry) and "
        "the pool is refreshed",
    )


class ArtifactSettings(BaseModel):
    """Where signed model artifacts are stored."""

    dir: Path = Field(default=Path(DEFAULT_ARTIFACT_DIR))
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)


class SigningSettings(BaseModel):
    """Which Ed25519 public keys may sign uploaded artifacts (several during a rotation)."""

    key_file: Path | None = Field(
        default=None, description="the registry's private key; its .pub file is trusted"
    )
    trusted_keys: list[Path] = Field(default_factory=list, description="public-key PEM files")

    def trusted(self) -> TrustedKeys:
        """Return the trusted public keys (the key file's ``.pub`` plus ``trusted_keys``)."""
        paths = list(self.trusted_keys)
        if self.key_file is not None:
            paths.append(public_path(self.key_file))
        return TrustedKeys(load_public_key(p) for p in paths)


class ApiSettings(BaseSettings):
    """Settings of ``predis-fl api serve``."""

    model_config = SettingsConfigDict(
        env_prefix="PREDIS_API_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
    )

    mode: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="how long a revoked token may still work"
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> ApiSettings:
        if self.mode != "production":
            return self
        problems = []
        url = self.database.url.get_secret_value()
        if url == DEFAULT_DATABASE_URL:
            problems.append("PREDIS_API_DATABASE__URL is the development default")
        else:
            parsed = make_url(url)
            if parsed.get_backend_name() != "sqlite" and (parsed.password or "") in DEFAULT_SECRETS:
                problems.append("the database password is empty or a well-known default")
        if self.artifacts.dir == Path(DEFAULT_ARTIFACT_DIR):
            problems.append("PREDIS_API_ARTIFACTS__DIR is the development default")
        if self.signing.key_file is None and not self.signing.trusted_keys:
            problems.append("no trusted signing key (PREDIS_API_SIGNING__TRUSTED_KEYS)")
        if problems:
            raise ValueError("refusing to start in production mode: " + "; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> ApiSettings:
    """Return the settings read once from the environment (cached; clear with ``cache_clear``)."""
    return ApiSettings()
