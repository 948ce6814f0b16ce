"""Request dependencies: the authenticated caller, role and tenant checks, database work.

Database work (:func:`in_session`) runs on the event loop by default: the registry's queries are
short indexed lookups, and handing each one to the thread pool cost more CPU than the queries
themselves (measured: 0.5 ms instead of 1.2 ms per ``GET /v1/models/{version}`` on SQLite). For
a remote database with high latency set ``PREDIS_API_DATABASE__IN_THREADPOOL=true`` or run
several workers (``predis-fl api serve --workers N``). Authentication happens in a dependency,
before the body and parameters are validated: a request without a valid token gets 401
whatever else is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from federation.server.api.auth_cache import AuthCache
from federation.server.api.errors import forbidden, unauthorized
from federation.server.registry import (
    DEFAULT_PAGE_SIZE,
    ID_PATTERN,
    MAX_PAGE_SIZE,
    NotFoundError,
    Principal,
    Role,
    authenticate,
    token_digest,
)

T = TypeVar("T")

_bearer = HTTPBearer(
    auto_error=False,
    description="API token from `predis-fl api create-token` (roles: admin, server, customer)",
)


async def in_session(
    request: Request, work: Callable[[Session], T], *, read_only: bool = False
) -> T:
    """Run ``work(session)`` with a fresh session, closed afterwards (see the module docs).

    ``read_only`` work runs without a transaction on PostgreSQL (autocommit: no ``BEGIN`` and
    ``ROLLBACK`` round trips; each statement still sees committed data only); it must not write.
    """
    app = request.app
    sessions: sessionmaker[Session] = app.state.read_sessions if read_only else app.state.sessions

    def call() -> T:
        with sessions() as session:
            return work(session)

    if request.app.state.settings.database.in_threadpool:
        return await run_in_threadpool(call)
    return call()


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the caller of the request (from the auth cache or the token table).

    Raises
    ------
    federation.server.api.errors.ApiError
        401 without a bearer token, or with an unknown or revoked one.
    """
    if credentials is None:
        raise unauthorized()
    token = credentials.credentials
    digest = token_digest(token)
    cache: AuthCache = request.app.state.auth_cache
    principal = cache.get(digest)
    if principal is None:
        principal = await in_session(
            request, lambda session: authenticate(session, token), read_only=True
        )
        if principal is None:
            raise unauthorized()
        cache.put(digest, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
CustomerIdPath = Annotated[str, Path(pattern=ID_PATTERN, min_length=1, max_length=64)]
VersionPath = Annotated[str, Path(pattern=ID_PATTERN, min_length=1, max_length=64)]
LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"page size (1-{MAX_PAGE_SIZE})")
]
OffsetQuery = Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


def require_role(principal: Principal, *roles: Role) -> None:
    """Refuse (403) a caller whose role is not in ``roles``."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise forbidden(f"a {principal.role.value} token may not do this (allowed: {allowed})")


def require_customer(principal: Principal, customer_id: str) -> None:
    """Hide another customer's records from a customer token (404, as if absent)."""
    if not principal.may_access(customer_id):
        raise NotFoundError("customer", customer_id)


def json_reply(body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    """Return ``body`` serialized once, as the route's JSON response.

    FastAPI would otherwise validate a returned model against the route's ``response_model``
    again before serializing it; the read endpoints build their models from the database
    already, so this halves their serialization work. The OpenAPI schema still comes from the
    route's ``response_model``.
    """
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)
