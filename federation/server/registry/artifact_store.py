"""Model artifacts on disk: one directory per version holding the signed files.

Layout::

    <root>/<version>/base.safetensors
    <root>/<version>/manifest.json
    <root>/<version>/signature.json

A version's directory is written under a temporary name and renamed into place, so a reader
never sees half an artifact. Files are only ever read back as bytes (no pickle, no ``torch.load``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from federation.server.registry.customers import check_identifier
from federation.server.registry.errors import NotFoundError
from privacy.signing import (
    ManifestSignature,
    TrustedKeys,
    manifest_files,
    verify_artifact,
    write_signed_artifact,
)

DEFAULT_ARTIFACT_DIR = "predis-registry/artifacts"
"""Development default (refused in production)."""


class ArtifactStore:
    """Signed model artifacts under one root directory.

    Parameters
    ----------
    root
        The artifact directory (created if missing).
    """

    def __init__(self, root: str | Path) -> None:
        self._root = Path(root)

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self._root)!r})"

    @property
    def root(self) -> Path:
        """The artifact directory."""
        return self._root

    def directory(self, version: str) -> Path:
        """Return the directory of ``version``'s artifact (which may not exist)."""
        return self._root / check_identifier(version, "model version")

    def save(
        self,
        version: str,
        manifest: Mapping[str, Any],
        signature: ManifestSignature,
        contents: Mapping[str, bytes],
    ) -> Path:
        """Write ``version``'s artifact (replacing a stale directory of the same version)."""
        target = self.directory(version)
        self._root.mkdir(parents=True, exist_ok=True)
        staging = self._root / f".staging-{version}-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        write_signed_artifact(staging, manifest, signature, contents)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        _fsync_dir(self._root)
        return target

    def file_path(self, version: str, name: str) -> Path:
        """Return the path of one file of ``version``'s artifact.

        Raises
        ------
        NotFoundError
            If the file is not there.
        """
        path = self.directory(version) / name
        if not path.is_file():
            raise NotFoundError("artifact", f"{version}/{name}")
        return path

    def verify(self, version: str, trusted: TrustedKeys) -> dict[str, Any]:
        """Verify ``version``'s stored artifact (signature, every sha256); return the manifest."""
        return verify_artifact(self.directory(version), trusted)

    def weights_name(self, manifest: Mapping[str, Any]) -> str:
        """Return the name of the weight file of ``manifest`` (its first listed file)."""
        return next(iter(manifest_files(manifest)))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
