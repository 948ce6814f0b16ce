"""Model-adoption API (FastAPI, ``/v1``): app factory, settings, errors and the agent's client."""

from federation.server.api.app import API_VERSION, create_app
from federation.server.api.client import (
    RegistryClient,
    RegistryClientError,
    RegistryUnavailableError,
)
from federation.server.api.errors import ApiError, ErrorBody
from federation.server.api.metrics import ApiMetrics
from federation.server.api.settings import (
    ApiSettings,
    ArtifactSettings,
    DatabaseSettings,
    SigningSettings,
    get_settings,
)

__all__ = [
    "API_VERSION",
    "ApiError",
    "ApiMetrics",
    "ApiSettings",
    "ArtifactSettings",
    "DatabaseSettings",
    "ErrorBody",
    "RegistryClient",
    "RegistryClientError",
    "RegistryUnavailableError",
    "SigningSettings",
    "create_app",
    "get_settings",
]
