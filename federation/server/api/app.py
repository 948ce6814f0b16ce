"""The adoption API application: ``create_app(settings)`` builds a FastAPI app on the registry.

The database is migrated to the newest schema when the app is created (so ``predis-fl api
serve`` works on an empty database), the trusted signing keys are loaded once, and every
response — errors included — is JSON with a stable ``code`` (see
:mod:`federation.server.api.errors`). All routes except ``/v1/health``, ``/metrics`` and the
OpenAPI documents need a bearer token.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from federation.server.api.auth_cache import AuthCache
from federation.server.api.customer_routes import router as customer_router
from federation.server.api.errors import install_error_handlers
from federation.server.api.health_routes import router as health_router
from federation.server.api.metrics import ApiMetrics, MetricsMiddleware
from federation.server.api.model_routes import router as model_router
from federation.server.api.settings import ApiSettings, get_settings
from federation.server.api.version_cache import VersionCache
from federation.server.registry import (
    ArtifactStore,
    is_sqlite,
    make_engine,
    session_factory,
    upgrade_database,
)

API_VERSION = "1.0.0"
_DESCRIPTION = """\
Model registry and model-adoption API of Predis Federation.

* **Auth**: `Authorization: Bearer <token>` (tokens from `predis-fl api create-token`; roles
  `admin`, `server`, `customer` — a customer token sees only its own customer).
* **Errors**: JSON `{"code": "...", "message": "..."}` with a stable `code`.
* **Pagination**: list endpoints take `limit` (1-500, default 50) and `offset`; responses carry
  `total` and `next_offset` (null on the last page). Lists are newest first.
* **Artifacts**: verify the manifest signature (Ed25519 over its canonical JSON) and the sha256
  of the downloaded weights before loading them.
"""


def create_app(
    settings: ApiSettings | None = None, *, engine: Engine | None = None, migrate: bool = True
) -> FastAPI:
    """Build the API application.

    Parameters
    ----------
    settings
        Service settings (default: :func:`get_settings`, from the environment).
    engine
        Use this engine instead of one built from ``settings.database.url``.
    migrate
        Migrate the database to the newest schema first.

    Raises
    ------
    privacy.SigningError
        If a configured trusted public key cannot be loaded.
    federation.server.registry.RegistryConfigError
        If the database URL is invalid.
    """
    settings = settings or get_settings()
    if engine is None:
        url = settings.database.url.get_secret_value()
        engine = make_engine(url)
        if not is_sqlite(engine):
            engine.dispose()
            engine = make_engine(
                url,
                pool_size=settings.database.pool_size,
                pool_pre_ping=settings.database.pre_ping,
                pool_recycle=1800,
            )
    if migrate:
        upgrade_database(engine)
    app = FastAPI(
        title="Predis Federation registry and adoption API",
        version=API_VERSION,
        description=_DESCRIPTION,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.read_sessions = (
        app.state.sessions
        if is_sqlite(engine)
        else session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    )
    app.state.versions = VersionCache()
    app.state.store = ArtifactStore(settings.artifacts.dir)
    app.state.trusted = settings.signing.trusted()
    app.state.metrics = ApiMetrics()
    app.state.auth_cache = AuthCache(settings.auth_cache_seconds)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(model_router)
    app.include_router(customer_router)
    return app


def app_from_environment() -> FastAPI:
    """Build the app from the environment without migrating (uvicorn factory for workers).

    ``predis-fl api serve --workers N`` migrates once, exports its settings as ``PREDIS_API_*``
    variables and has each worker process call this.
    """
    return create_app(get_settings(), migrate=False)
