"""Per-round checkpoints of the merged shared base: safetensors plus a JSON manifest.

A checkpoint directory holds, for every saved round ``r``::

    round-000r.safetensors               the merged base after round r (round 0: the initial base)
    round-000r.server-state.safetensors  the server optimiser's state after round r, when the
                                         strategy keeps one (FedAdam's moments)
    round-000r.json                      manifest: format, round, parent round, file name, sha256
                                         of the weights file (and of the server state), tensor
                                         shapes and dtypes, and the round's metrics (clients
                                         used/failed/excluded with reasons, bytes received, …)

Every file is written to a temporary name, flushed and renamed into place, manifest last, so a
manifest names only complete files; a round without a manifest (a crash between the renames)
does not exist. :meth:`CheckpointStore.latest` returns the highest
round whose manifest parses and whose weights match its sha256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from cache_core import write_atomic

_log = logging.getLogger(__name__)

FORMAT = "predis-federated-base"
FORMAT_VERSION = 1
_MANIFEST = re.compile(r"^round-(\d{4,})\.json$")


class CheckpointError(Exception):
    """A checkpoint is missing, corrupt, or does not fit the model being federated."""


@dataclass(frozen=True)
class Checkpoint:
    """One saved round.

    Attributes
    ----------
    server_round
        The round whose merged base this is (0: the initial base).
    weights
        The base by name.
    manifest
        The parsed manifest.
    server_state
        The server optimiser's state saved with the round (``{}`` when there is none).
    """

    server_round: int
    weights: dict[str, NDArray[Any]]
    manifest: dict[str, Any]
    server_state: dict[str, NDArray[Any]] = field(default_factory=dict)


class CheckpointStore:
    """Save and load round checkpoints in one directory (created on first save).

    Parameters
    ----------
    directory
        The checkpoint directory.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.directory)!r})"

    def rounds(self) -> list[int]:
        """Return the rounds that have a manifest, ascending (not verified)."""
        if not self.directory.is_dir():
            return []
        found = (_MANIFEST.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def save(
        self,
        server_round: int,
        weights: dict[str, NDArray[Any]],
        *,
        parent_round: int | None,
        metrics: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        server_state: Mapping[str, NDArray[Any]] | None = None,
    ) -> Path:
        """Write the checkpoint of ``server_round`` atomically and return its manifest path.

        Parameters
        ----------
        server_round
            Round number (``>= 0``).
        weights
            The merged base by name.
        parent_round
            The round whose base this one was computed from (``None`` for the initial base).
        metrics
            The round's accounting (JSON-able).
        extra
            Further JSON-able manifest fields (strategy, model configuration, …).
        server_state
            The server optimiser's state to save with the round (``None`` or empty: none).
        """
        if server_round < 0:
            raise ValueError(f"server_round must be >= 0, got {server_round}")
        self.directory.mkdir(parents=True, exist_ok=True)
        data = save_tensors({k: np.ascontiguousarray(v) for k, v in weights.items()})
        weights_name = f"round-{server_round:04d}.safetensors"
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "round": server_round,
            "parent_round": parent_round,
            "weights_file": weights_name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "tensors": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                for k, v in sorted(weights.items())
            },
            "created_at": time.time(),
            "metrics": metrics or {},
            **(extra or {}),
        }
        write_atomic(self.directory / weights_name, data)
        if server_state:
            state = save_tensors({k: np.ascontiguousarray(v) for k, v in server_state.items()})
            state_name = f"round-{server_round:04d}.server-state.safetensors"
            write_atomic(self.directory / state_name, state)
            manifest["server_state"] = {
                "file": state_name,
                "sha256": hashlib.sha256(state).hexdigest(),
                "bytes": len(state),
                "tensors": len(server_state),
            }
        path = self.directory / f"round-{server_round:04d}.json"
        write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        _log.info(
            "saved round %d (%d bytes, sha256 %s) to %s",
            server_round,
            len(data),
            manifest["sha256"][:12],
            self.directory,
        )
        return path

    def write_json(self, name: str, payload: dict[str, Any]) -> Path:
        """Write ``payload`` as ``name`` in the directory, atomically, and return its path.

        For run-level records beside the rounds (e.g. the final report); ``name`` must not look
        like a round manifest.
        """
        if _MANIFEST.match(name) or "/" in name or not name.endswith(".json"):
            raise ValueError(f"not a valid run-level JSON file name: {name!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        write_atomic(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
        return path

    def load(self, server_round: int) -> Checkpoint:
        """Load and verify the checkpoint of ``server_round``.

        Raises
        ------
        CheckpointError
            If the manifest, weights or server state are missing or corrupt, or a sha256
            differs.
        """
        path = self.directory / f"round-{server_round:04d}.json"
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read the manifest {path}: {exc}") from None
        if manifest.get("format") != FORMAT or manifest.get("round") != server_round:
            raise CheckpointError(f"{path} is not a {FORMAT} manifest of round {server_round}")
        weights = self._tensors(path, str(manifest.get("weights_file", "")), manifest.get("sha256"))
        state_entry = manifest.get("server_state")
        state: dict[str, NDArray[Any]] = {}
        if state_entry is not None:
            if not isinstance(state_entry, dict):
                raise CheckpointError(f"{path}: server_state must be an object")
            state = self._tensors(path, str(state_entry.get("file", "")), state_entry.get("sha256"))
        return Checkpoint(server_round, weights, manifest, state)

    def _tensors(self, manifest_path: Path, name: str, sha256: object) -> dict[str, NDArray[Any]]:
        """Read, verify and decode a safetensors file named by a manifest."""
        path = self.directory / name
        if not name or path.parent != self.directory:
            raise CheckpointError(f"{manifest_path} names no valid file ({name!r})")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise CheckpointError(f"{path} does not match the sha256 in {manifest_path}")
        try:
            return dict(load_tensors(data))
        except SafetensorError as exc:
            raise CheckpointError(f"{path} is not a safetensors file: {exc}") from None

    def latest(self) -> Checkpoint | None:
        """Return the highest round that loads and verifies (``None`` when there is none).

        A round that fails verification is logged and skipped, so a run resumes from the last
        good round.
        """
        for server_round in reversed(self.rounds()):
            try:
                return self.load(server_round)
            except CheckpointError as exc:
                _log.warning("skipping round %d: %s", server_round, exc)
        return None
