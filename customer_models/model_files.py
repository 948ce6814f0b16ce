"""Model files: safetensors weights plus a JSON manifest; never pickle.

A model directory holds::

    base.safetensors      shared base weights (what federation exchanges)
    adapter.safetensors   the customer's adapter (never leaves the customer)
    manifest.json         format version, configs, feature names, tensor shapes, the
                          fingerprint of the customer's key table, the training trace and
                          fraction, metrics, and the sha256 of both weight files

Loading checks, in order: the manifest parses and has the expected format; each weight file's
sha256 matches; the tensors are exactly the names and shapes the manifest and the model built
from its configuration expect; the feature lists match this code's; and, when the caller gives
its key encoder, the key-table fingerprint matches. Any failure raises :class:`ModelFileError`
naming the file and what was wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from cache_core import write_atomic
from customer_models.config import ModelConfig
from customer_models.errors import ModelFileError
from customer_models.features import CAND_FEATURES, CTX_FEATURES, FeaturizerConfig
from customer_models.keys import KeyEncoder
from customer_models.model import AccessModel

FORMAT = "predis-access-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BASE_FILE = "base.safetensors"
ADAPTER_FILE = "adapter.safetensors"


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model with what its manifest says about it."""

    model: AccessModel
    featurizer: FeaturizerConfig
    key_fingerprint: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(
    directory: str | Path,
    model: AccessModel,
    *,
    featurizer: FeaturizerConfig,
    encoder: KeyEncoder,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` into ``directory`` (created if needed); return the manifest path.

    Weight files are written first and the manifest last, each atomically, so a crash leaves
    either the previous model or the new one, never a manifest pointing at missing weights.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    base = {k: v.contiguous() for k, v in model.base_state().items()}
    adapter = {k: v.contiguous() for k, v in model.adapter_state().items()}
    base_bytes = save_tensors(base)
    adapter_bytes = save_tensors(adapter)
    write_atomic(out / BASE_FILE, base_bytes)
    write_atomic(out / ADAPTER_FILE, adapter_bytes)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "featurizer_config": asdict(featurizer),
        "cand_features": list(CAND_FEATURES),
        "ctx_features": list(CTX_FEATURES),
        "base": {k: list(v.shape) for k, v in base.items()},
        "adapter": {k: list(v.shape) for k, v in adapter.items()},
        "key_table_fingerprint": encoder.fingerprint(),
        "training": training or {},
        "metrics": metrics or {},
        "sha256": {BASE_FILE: _sha256(base_bytes), ADAPTER_FILE: _sha256(adapter_bytes)},
    }
    path = out / MANIFEST
    write_atomic(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return path


def load_model(directory: str | Path, *, encoder: KeyEncoder | None = None) -> ModelBundle:
    """Load and verify a model directory written by :func:`save_model`.

    Parameters
    ----------
    directory
        The model directory.
    encoder
        The customer's key encoder; when given, the manifest's key-table fingerprint must match.

    Raises
    ------
    ModelFileError
        On any missing file, bad manifest, checksum mismatch, unexpected tensor name or shape,
        feature-list mismatch or foreign key table.
    """
    root = Path(directory)
    manifest = _read_manifest(root / MANIFEST)
    try:
        model_config = ModelConfig.from_dict(dict(manifest["model_config"]))
        featurizer = FeaturizerConfig(**dict(manifest["featurizer_config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{root / MANIFEST}: bad configuration: {exc}") from None
    if list(manifest.get("cand_features", [])) != list(CAND_FEATURES) or list(
        manifest.get("ctx_features", [])
    ) != list(CTX_FEATURES):
        raise ModelFileError(
            f"{root / MANIFEST}: the model was trained on other features than this version "
            "computes; retrain it"
        )
    if encoder is not None and manifest.get("key_table_fingerprint") != encoder.fingerprint():
        raise ModelFileError(
            f"{root / MANIFEST}: the model was trained with another customer's key table "
            "(key-table fingerprint mismatch)"
        )
    model = AccessModel(model_config)
    checksums = manifest.get("sha256", {})
    base = _read_tensors(root / BASE_FILE, checksums.get(BASE_FILE), manifest.get("base"))
    adapter = _read_tensors(
        root / ADAPTER_FILE, checksums.get(ADAPTER_FILE), manifest.get("adapter")
    )
    try:
        model.load_base_state(base)
        model.load_adapter_state(adapter)
    except ModelFileError as exc:
        raise ModelFileError(f"{root}: {exc}") from None
    model.eval()
    return ModelBundle(
        model=model,
        featurizer=featurizer,
        key_fingerprint=str(manifest.get("key_table_fingerprint", "")),
        training=dict(manifest.get("training", {})),
        metrics=dict(manifest.get("metrics", {})),
    )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no model manifest here") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable manifest: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a {FORMAT} manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {data.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}"
        )
    return data


def _read_tensors(path: Path, checksum: object, shapes: object) -> dict[str, torch.Tensor]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read weights: {exc}") from None
    if not isinstance(checksum, str) or _sha256(raw) != checksum:
        raise ModelFileError(f"{path}: sha256 does not match the manifest (corrupt or altered)")
    try:
        tensors = load_tensors(raw)
    except (SafetensorError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a valid safetensors file: {exc}") from None
    if not isinstance(shapes, dict) or {k: list(v.shape) for k, v in tensors.items()} != shapes:
        raise ModelFileError(f"{path}: tensor names or shapes differ from the manifest")
    return tensors
