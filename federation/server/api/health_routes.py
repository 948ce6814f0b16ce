"""``GET /v1/health`` (no token needed) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.orm import Session

from federation.server.api.dependencies import in_session
from federation.server.api.errors import error_responses
from federation.server.api.schemas import Health

router = APIRouter(tags=["service"])


def _revision(session: Session) -> str:
    return str(session.execute(text("SELECT version_num FROM alembic_version")).scalar() or "")


@router.get("/v1/health", response_model=Health, responses=error_responses(503))
async def health(request: Request) -> Health:
    """Check liveness and the database; needs no token."""
    revision = await in_session(request, _revision)
    return Health(status="ok", database="ok", schema_revision=revision)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition: request counts and latency by route, registry events."""
    body, content_type = request.app.state.metrics.render()
    return Response(content=body, media_type=content_type)
