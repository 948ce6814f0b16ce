"""Errors as JSON ``{"code": ..., "message": ...}`` with stable codes, mapped in one place.

Codes: ``bad_request`` (400, an unparsable body), ``unauthorized`` (401), ``forbidden`` (403),
``not_found`` / ``<what>_not_found`` (404), ``method_not_allowed`` (405), ``version_exists`` /
``idempotency_conflict`` / ``not_previously_adopted`` (409), ``payload_too_large`` (413),
``validation_error`` / ``invalid_request`` / ``artifact_refused`` (422),
``database_unavailable`` (503), ``internal_error`` (500). Messages never carry secrets.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from federation.server.registry import (
    ArtifactRefusedError,
    ConflictError,
    NotFoundError,
    RegistryConfigError,
    RegistryError,
)

_log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorBody(BaseModel):
    """Every error response."""

    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """An error the routes raise with its HTTP status and stable code."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        super().__init__(message)


def unauthorized(message: str = "missing or invalid bearer token") -> ApiError:
    """Return the 401 error (with ``WWW-Authenticate: Bearer``)."""
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    """Return a 403 error."""
    return ApiError(403, "forbidden", message)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` entries documenting ``statuses`` with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": HTTPStatus(s).phrase} for s in statuses}


def _body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        payload["details"] = details
    return payload


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into :class:`ErrorBody` JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        status = 400
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, ConflictError):
            status = 409
        elif isinstance(exc, ArtifactRefusedError | RegistryConfigError):
            status = 422
        code = exc.code if not isinstance(exc, RegistryConfigError) else "invalid_request"
        return JSONResponse(_body(code, str(exc)), status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return JSONResponse(_body(code, message), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        message = f"invalid request: {'.'.join(first['loc'])}: {first['msg']}"
        return JSONResponse(_body("validation_error", message, details), 422)

    @app.exception_handler(OperationalError)
    async def _database_error(request: Request, exc: OperationalError) -> JSONResponse:
        _log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            _body("database_unavailable", "the registry database is unavailable; retry later"),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(_body("internal_error", "internal server error"), 500)
