"""``/v1/models``: list, read, download (any token) and publish (server tokens) model versions."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from federation.server.api.dependencies import (
    DEFAULT_LIMIT,
    LimitQuery,
    OffsetQuery,
    PrincipalDep,
    VersionPath,
    in_session,
    json_reply,
    require_role,
)
from federation.server.api.errors import ApiError, error_responses
from federation.server.api.schemas import ModelOut, ModelPage, ModelUpload
from federation.server.api.version_cache import CachedVersion, VersionCache
from federation.server.registry import (
    ArtifactRefusedError,
    Role,
    get_model_version,
    list_model_versions,
    register_model_version,
)
from privacy.signing import ArtifactVerificationError, ManifestSignature

IMMUTABLE = "private, max-age=31536000, immutable"
_INLINE_BYTES = 1 << 20

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(400, 401, 422))


@router.get("", response_model=ModelPage)
async def list_models(
    request: Request,
    principal: PrincipalDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
) -> Response:
    """List model versions, newest first (``limit``/``offset`` pagination)."""

    def work(session: Session) -> ModelPage:
        page = list_model_versions(session, limit=limit, offset=offset)
        return ModelPage(
            items=[ModelOut.of(row) for row in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
            next_offset=page.next_offset,
        )

    return json_reply(await in_session(request, work, read_only=True))


async def _version(request: Request, version: str) -> CachedVersion:
    """Return a registered version from the worker's cache or the database (404 if unknown)."""
    cache: VersionCache = request.app.state.versions
    entry = cache.get(version)
    if entry is None:

        def work(session: Session) -> CachedVersion:
            row = get_model_version(session, version)
            return CachedVersion(
                model_json=ModelOut.of(row).model_dump_json().encode(),
                artifact_name=next(iter(row.manifest["files"])),
                artifact_sha256=row.artifact_sha256,
                artifact_size=row.artifact_size,
            )

        entry = await in_session(request, work, read_only=True)
        cache.put(version, entry)
    return entry


@router.get("/{version}", response_model=ModelOut, responses=error_responses(404))
async def get_model(version: VersionPath, request: Request, principal: PrincipalDep) -> Response:
    """Return one model version: metadata, signed manifest and detached signature."""
    entry = await _version(request, version)
    # a registered version never changes: its JSON is cached too, and so may clients
    return Response(
        entry.model_json, media_type="application/json", headers={"Cache-Control": IMMUTABLE}
    )


@router.get(
    "/{version}/artifact",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        **error_responses(404),
    },
)
async def get_artifact(version: VersionPath, request: Request, principal: PrincipalDep) -> Response:
    """Download the weights (safetensors); check them against the signed manifest before use.

    A version never changes once registered, so the reply may be cached (``immutable``); its
    ``ETag`` is the sha256 of the weights.
    """
    entry = await _version(request, version)
    name = entry.artifact_name
    path = request.app.state.store.file_path(version, name)
    headers = {
        "ETag": f'"{entry.artifact_sha256}"',
        "X-Artifact-Sha256": entry.artifact_sha256,
        "Cache-Control": IMMUTABLE,
    }
    if entry.artifact_size > _INLINE_BYTES:  # stream large files from disk
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"{version}-{name}",
            headers=headers,
        )
    headers["Content-Disposition"] = f'attachment; filename="{version}-{name}"'
    return Response(path.read_bytes(), media_type="application/octet-stream", headers=headers)


@router.post(
    "",
    response_model=ModelOut,
    status_code=201,
    responses=error_responses(403, 409, 413),
)
async def publish(body: ModelUpload, request: Request, principal: PrincipalDep) -> ModelOut:
    """Register a signed artifact (server tokens only).

    The signature must be by a trusted key and every file must match its sha256 in the
    manifest; otherwise the upload is refused (422 ``artifact_refused``) and the refusal is
    written to the audit log.
    """
    require_role(principal, Role.SERVER)
    contents = {}
    for name, encoded in body.files.items():
        try:
            contents[name] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_request", f"file {name!r} is not valid base64") from None
    if (
        sum(len(c) for c in contents.values())
        > request.app.state.settings.artifacts.max_upload_bytes
    ):
        raise ApiError(413, "payload_too_large", "artifact larger than the configured limit")
    try:
        signature = ManifestSignature.from_dict(body.signature.model_dump())
    except ArtifactVerificationError:  # bad base64: refused (and audited) like a bad signature
        signature = ManifestSignature(key_id=body.signature.key_id, signature=b"")

    def work(session: Session) -> ModelOut:
        row = register_model_version(
            session,
            request.app.state.store,
            manifest=body.manifest,
            signature=signature,
            contents=contents,
            trusted=request.app.state.trusted,
            actor=principal.actor,
        )
        return ModelOut.of(row)

    try:
        out = await in_session(request, work)
    except ArtifactRefusedError:
        request.app.state.metrics.artifacts_refused.inc()
        raise
    request.app.state.metrics.models_published.inc()
    return out
