"""Turning a verified registry version into a candidate model directory the agent can test.

The registry publishes the merged **shared base** only (``base.safetensors`` and a signed
manifest naming ``model_config`` and ``featurizer_config``). The agent's candidates are full
model directories (:func:`customer_models.save_model`): :func:`materialize_candidate` builds
one from the verified artifact — the registry's base, a fresh adapter (the challenger builder
replaces it with the customer's own adapter and refits it on recent samples), this customer's
key-table fingerprint — and records where it came from (``training.registry_version``), so
every later report names the registry version. The directory appears atomically (written
beside it, then renamed), so the adoption flow never sees half of one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors

from customer_models import AccessModel, KeyEncoder, ModelConfig, ModelFileError, save_model
from customer_models.errors import ModelConfigError
from customer_models.features import FeaturizerConfig, InvalidFeaturizerConfigError
from federation.client.agent.errors import CandidateRefusedError
from privacy.signing import WEIGHTS_FILE

#: Manifest field of a materialized candidate that names its registry version.
REGISTRY_VERSION_FIELD = "registry_version"


def materialize_candidate(
    verified: Path, manifest: Mapping[str, Any], target: Path, encoder: KeyEncoder
) -> Path:
    """Build the candidate model directory ``target`` from a verified registry artifact.

    Parameters
    ----------
    verified
        The downloaded artifact's folder (signature and sha256 already verified).
    manifest
        Its verified manifest.
    target
        Where the candidate directory appears (must not exist yet).
    encoder
        The customer's key encoder (its fingerprint goes into the candidate's manifest).

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    CandidateRefusedError
        If the artifact is not a shared base of an access model this code can run.
    """
    version = str(manifest.get("version", verified.name))
    try:
        config = ModelConfig.from_dict(dict(manifest["model_config"]))
        featurizer = FeaturizerConfig(**dict(manifest.get("featurizer_config") or {}))
    except KeyError:
        raise CandidateRefusedError(
            f"registry version {version}: its manifest names no model_config (not a shared "
            "base of an access model)"
        ) from None
    except (ModelConfigError, InvalidFeaturizerConfigError, TypeError, ValueError) as exc:
        raise CandidateRefusedError(f"registry version {version}: {exc}") from None
    try:
        base = load_tensors((verified / WEIGHTS_FILE).read_bytes())
    except (OSError, SafetensorError) as exc:
        raise CandidateRefusedError(
            f"registry version {version}: unreadable weights: {exc}"
        ) from None
    # Built on the meta device, the model draws nothing from the global random generator: this
    # runs on the registry link's thread, beside the agent's seeded model work.
    with torch.device("meta"):
        model = AccessModel(config)
    model.to_empty(device="cpu")
    # A fresh adapter from a fixed seed (the same version gives the same candidate bytes); the
    # challenger builder replaces it by the customer's own, refitted, before testing.
    model.reset_adapter(torch.Generator().manual_seed(0))
    try:
        model.load_base_state(dict(base))
    except (ModelFileError, ValueError, RuntimeError) as exc:
        raise CandidateRefusedError(
            f"registry version {version}: the weights do not fit its model_config: {exc}"
        ) from None
    staging = target.parent / f".staging-{target.name}"
    if staging.exists():
        shutil.rmtree(staging)
    save_model(
        staging,
        model,
        featurizer=featurizer,
        encoder=encoder,
        training={
            REGISTRY_VERSION_FIELD: version,
            "registry_round": manifest.get("round"),
            "registry_parent": manifest.get("parent"),
            "registry_created": manifest.get("created"),
            "registry_metrics": dict(manifest.get("metrics") or {}),
        },
    )
    staging.rename(target)
    return target


def registry_version_of(directory: str | Path) -> str | None:
    """Return the registry version a model directory was built from (``None``: not one)."""
    try:
        manifest = json.loads((Path(directory) / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    training = manifest.get("training") if isinstance(manifest, dict) else None
    value = training.get(REGISTRY_VERSION_FIELD) if isinstance(training, dict) else None
    return value if isinstance(value, str) else None
