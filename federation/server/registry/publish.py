"""Publishing a model: safetensors weights + manifest, signed, verified and registered.

:func:`publish_model` is what the ServerApp calls after each round (issue 6 item 3): it
serialises the merged shared base as safetensors, builds the manifest (version, round, parent,
metrics, sha256 and size of the weights), signs its canonical bytes with the registry key, and
registers the version through the same verification as an upload to ``POST /v1/models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.typing import NDArray
from safetensors.numpy import save as save_numpy
from sqlalchemy.orm import Session

from federation.server.registry.artifact_store import ArtifactStore
from federation.server.registry.model_versions import register_model_version
from federation.server.registry.models import ModelVersion, utcnow
from privacy.signing import (
    WEIGHTS_FILE,
    TrustedKeys,
    file_entry,
    load_private_key,
    sign_manifest,
)

MANIFEST_FORMAT = "predis-model/1"


def build_manifest(
    *,
    version: str,
    contents: Mapping[str, bytes],
    round: int | None = None,
    parent: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the manifest of an artifact holding ``contents`` (file name → bytes).

    ``extra`` adds fields (e.g. the model configuration); it cannot override the standard ones.
    """
    manifest: dict[str, Any] = dict(extra or {})
    manifest.update(
        {
            "format": MANIFEST_FORMAT,
            "version": version,
            "round": round,
            "parent": parent,
            "metrics": dict(metrics or {}),
            "created": utcnow().isoformat(timespec="seconds"),
            "files": {name: file_entry(data) for name, data in contents.items()},
        }
    )
    return manifest


def weights_bytes(weights: Mapping[str, NDArray[Any]] | bytes | str | Path) -> bytes:
    """Return safetensors bytes for ``weights``: arrays by name, safetensors bytes, or a file."""
    if isinstance(weights, bytes):
        return weights
    if isinstance(weights, str | Path):
        return Path(weights).read_bytes()
    return save_numpy({name: np.ascontiguousarray(a) for name, a in weights.items()})


def publish_model(
    session: Session,
    artifacts: ArtifactStore | str | Path,
    *,
    version: str,
    weights: Mapping[str, NDArray[Any]] | bytes | str | Path,
    signing_key: Ed25519PrivateKey | str | Path,
    round: int | None = None,
    parent: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    actor: str = "server-app",
) -> ModelVersion:
    """Sign and register a model version; commit and return its row.

    Parameters
    ----------
    session
        A registry session (see :func:`~federation.server.registry.database.session_factory`).
    artifacts
        The artifact store or its directory.
    version
        New version id (1-64 letters, digits, ``.``, ``_``, ``-``), e.g. ``"run7-r0003"``.
    weights
        Shared-base arrays by stable name, safetensors bytes, or a safetensors file.
    signing_key
        The registry's Ed25519 private key or its PEM file (``predis-fl certs init``).
    round, parent, metrics, extra
        Manifest fields (see :func:`build_manifest`).
    actor
        Name written to the audit log.

    Raises
    ------
    federation.server.registry.RegistryError
        If the version exists, the parent is unknown, or a field is malformed.
    privacy.SigningError
        If the key cannot be loaded.
    """
    key = (
        signing_key if isinstance(signing_key, Ed25519PrivateKey) else load_private_key(signing_key)
    )
    store = artifacts if isinstance(artifacts, ArtifactStore) else ArtifactStore(artifacts)
    contents = {WEIGHTS_FILE: weights_bytes(weights)}
    manifest = build_manifest(
        version=version, contents=contents, round=round, parent=parent, metrics=metrics, extra=extra
    )
    return register_model_version(
        session,
        store,
        manifest=manifest,
        signature=sign_manifest(manifest, key),
        contents=contents,
        trusted=TrustedKeys([key.public_key()]),
        actor=actor,
    )
