"""Model versions: registering a signed artifact (verified first), looking versions up."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.server.registry.artifact_store import ArtifactStore
from federation.server.registry.audit import record_audit
from federation.server.registry.customers import ID_PATTERN, check_identifier
from federation.server.registry.errors import (
    ArtifactRefusedError,
    ConflictError,
    NotFoundError,
    RegistryConfigError,
)
from federation.server.registry.models import ModelVersion
from federation.server.registry.pagination import DEFAULT_PAGE_SIZE, Page, fetch_page
from privacy.signing import (
    ArtifactVerificationError,
    ManifestSignature,
    TrustedKeys,
    manifest_files,
    verify_files,
)


def register_model_version(
    session: Session,
    store: ArtifactStore,
    *,
    manifest: Mapping[str, Any],
    signature: ManifestSignature,
    contents: Mapping[str, bytes],
    trusted: TrustedKeys,
    actor: str,
) -> ModelVersion:
    """Verify a signed artifact, store its files and record the version; commit.

    The manifest must hold ``version`` (see
    :data:`~federation.server.registry.customers.ID_PATTERN`), ``files``, and may hold
    ``round`` (int), ``parent`` (an existing version) and ``metrics`` (object).

    Raises
    ------
    ArtifactRefusedError
        If the signature is not by a trusted key or a file differs from the manifest (the
        refusal is written to the audit log).
    ConflictError
        If the version exists already (code ``version_exists``).
    NotFoundError
        If the parent version does not exist.
    RegistryConfigError
        If a manifest field is malformed.
    """
    version = manifest.get("version")
    try:
        trusted.verify(manifest, signature)
        verify_files(manifest, contents)
    except ArtifactVerificationError as exc:
        session.rollback()
        record_audit(
            session,
            actor=actor,
            action="model.refused",
            entity="model_version",
            entity_id=version if isinstance(version, str) and _is_identifier(version) else "?",
            details={"reason": str(exc), "key_id": signature.key_id},
        )
        session.commit()
        raise ArtifactRefusedError(f"artifact refused: {exc}") from exc
    version, round_, parent, metrics = _manifest_fields(manifest)
    if session.scalar(select(ModelVersion.id).where(ModelVersion.version == version)) is not None:
        raise ConflictError("version_exists", f"model version {version!r} already exists")
    if parent is not None:
        get_model_version(session, parent)
    files = manifest_files(manifest)
    weights = next(iter(files))
    store.save(version, manifest, signature, {name: contents[name] for name in files})
    row = ModelVersion(
        version=version,
        round=round_,
        parent=parent,
        metrics=metrics,
        manifest=dict(manifest),
        artifact_sha256=files[weights]["sha256"],
        artifact_size=files[weights]["size"],
        signature=base64.b64encode(signature.signature).decode("ascii"),
        key_id=signature.key_id,
    )
    session.add(row)
    record_audit(
        session,
        actor=actor,
        action="model.published",
        entity="model_version",
        entity_id=version,
        details={"round": round_, "parent": parent, "sha256": row.artifact_sha256},
    )
    session.commit()
    return row


def get_model_version(session: Session, version: str) -> ModelVersion:
    """Return model version ``version``.

    Raises
    ------
    NotFoundError
        If there is no such version.
    """
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if row is None:
        raise NotFoundError("model", version)
    return row


def list_model_versions(
    session: Session, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
) -> Page[ModelVersion]:
    """Return model versions, newest first."""
    query = select(ModelVersion).order_by(ModelVersion.id.desc())
    return fetch_page(session, query, limit=limit, offset=offset)


def model_signature(row: ModelVersion) -> ManifestSignature:
    """Return the detached signature stored with ``row``."""
    return ManifestSignature(key_id=row.key_id, signature=base64.b64decode(row.signature))


def _manifest_fields(
    manifest: Mapping[str, Any],
) -> tuple[str, int | None, str | None, dict[str, Any]]:
    version = manifest.get("version")
    if not isinstance(version, str):
        raise RegistryConfigError("manifest needs a string 'version'")
    check_identifier(version, "model version")
    round_ = manifest.get("round")
    if round_ is not None and (
        not isinstance(round_, int) or isinstance(round_, bool) or not 0 <= round_ < 2**31
    ):
        raise RegistryConfigError("manifest 'round' must be an integer in [0, 2**31) or null")
    parent = manifest.get("parent")
    if parent is not None:
        if not isinstance(parent, str):
            raise RegistryConfigError("manifest 'parent' must be a version string or null")
        check_identifier(parent, "parent version")
    metrics = manifest.get("metrics", {})
    if not isinstance(metrics, dict):
        raise RegistryConfigError("manifest 'metrics' must be an object")
    return version, round_, parent, metrics


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(ID_PATTERN, value) is not None
