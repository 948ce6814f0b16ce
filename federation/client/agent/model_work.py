"""Model work of the agent, all off the serving path: verify candidates, refit adapters.

A candidate global model is refused (:class:`~federation.client.agent.CandidateRefusedError`)
when :func:`customer_models.load_model` refuses it — missing or corrupt bytes (sha256), tensors
of the wrong names or shapes, another customer's key table — or when its shared base does not
have the shapes of the base the customer runs. The customer's adapter is refitted with
:func:`customer_models.fit_adapter` on the recent sampled requests of the local store, the base
frozen.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from cache_core.sampler import AccessOp
from cache_core.trace import Trace
from customer_models import (
    AccessModel,
    KeyEncoder,
    ModelBundle,
    ModelFileError,
    TrainConfig,
    build_examples,
    fit_adapter,
    load_model,
)
from customer_models.features import FeaturizerConfig
from customer_models.model_files import MANIFEST
from federation.client.agent.errors import AgentStateError, CandidateRefusedError

#: Training share of the sampled stream used by a refit (the rest is not needed: no early stop).
_REFIT_TRAIN_FRACTION = 0.99
_REFIT_MAX_EXAMPLES = 20_000


@dataclass(frozen=True)
class RefitResult:
    """What an adapter refit did.

    Attributes
    ----------
    samples
        Sampled requests it could draw examples from.
    steps
        Optimiser steps taken (0: too few samples, nothing changed).
    loss
        Mean training loss of those steps (``None`` when none were taken).
    """

    samples: int
    steps: int
    loss: float | None


def manifest_sha256(directory: str | Path) -> str:
    """Return the sha256 of a model directory's manifest (which pins its weights' sha256).

    A directory without a readable manifest gets the sha256 of its resolved path, so a refused
    candidate is still recorded under a stable identity.
    """
    root = Path(directory)
    try:
        return hashlib.sha256((root / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return hashlib.sha256(str(root.resolve()).encode()).hexdigest()


def load_version(directory: str | Path, encoder: KeyEncoder) -> ModelBundle:
    """Load a model directory the agent recorded (its own files: failure is a state error).

    Raises
    ------
    AgentStateError
        If the directory no longer loads.
    """
    try:
        return load_model(directory, encoder=encoder)
    except ModelFileError as exc:
        raise AgentStateError(f"a recorded model version no longer loads: {exc}") from None


def verify_candidate(
    directory: str | Path, encoder: KeyEncoder, champion: AccessModel | None
) -> ModelBundle:
    """Load a candidate global model, refusing anything the customer must not run.

    Parameters
    ----------
    directory
        The candidate's model directory.
    encoder
        The customer's key encoder (the candidate must carry the customer's key table).
    champion
        The learned model running now, whose base shapes the candidate must have (``None``
        when the champion is not a learned model).

    Raises
    ------
    CandidateRefusedError
        With the reason, if the candidate is refused.
    """
    try:
        bundle = load_model(directory, encoder=encoder)
    except ModelFileError as exc:
        raise CandidateRefusedError(f"candidate refused: {exc}") from None
    if champion is not None:
        ours = {k: tuple(v.shape) for k, v in champion.base_state().items()}
        theirs = {k: tuple(v.shape) for k, v in bundle.model.base_state().items()}
        if ours != theirs:
            wrong = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
            raise CandidateRefusedError(
                f"candidate refused: {directory}: its shared base has other shapes than the "
                f"running model's ({', '.join(wrong[:4])}{'...' if len(wrong) > 4 else ''})"
            )
    return bundle


def threshold_of(bundle: ModelBundle, default: float) -> float:
    """Return the confidence threshold a model's manifest records, else ``default``."""
    value = bundle.metrics.get("threshold")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return default


def adapter_bytes(model: AccessModel) -> bytes:
    """Return the model's adapter as safetensors bytes."""
    return save_tensors({k: v.contiguous() for k, v in model.adapter_state().items()})


def load_adapter_bytes(model: AccessModel, data: bytes) -> None:
    """Load safetensors adapter bytes into ``model``.

    Raises
    ------
    AgentStateError
        If the bytes are not a safetensors file or do not fit the model.
    """
    try:
        model.load_adapter_state(load_tensors(data))
    except (SafetensorError, ValueError, ModelFileError) as exc:
        raise AgentStateError(f"the stored adapter does not fit the model: {exc}") from None


def adapter_fits(model: AccessModel, data: bytes) -> bool:
    """Whether adapter bytes have exactly the names and shapes of ``model``'s adapter."""
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError):
        return False
    ours = {k: tuple(v.shape) for k, v in model.adapter_state().items()}
    return ours == {k: tuple(v.shape) for k, v in tensors.items()}


def refit_adapter(
    model: AccessModel,
    samples: NDArray[np.void],
    encoder: KeyEncoder,
    featurizer: FeaturizerConfig,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    min_samples: int,
    seed: int,
) -> RefitResult:
    """Refit ``model``'s adapter (in place, base frozen) on stored sampled requests.

    The sampled ``get`` requests, oldest first, are featurized as one stream (burst windows
    back to back) and ``steps`` Adam steps are taken on examples drawn from it.

    Parameters
    ----------
    model
        The model whose adapter is refitted.
    samples
        Stored samples (:data:`~federation.client.agent.store.STORED_SAMPLE_DTYPE`).
    encoder
        The customer's key encoder.
    featurizer
        The featurizer configuration of the model.
    steps, batch_size, learning_rate
        Optimiser settings.
    min_samples
        Fewest sampled requests to refit on; with fewer nothing changes.
    seed
        Seeds example sampling and shuffling.
    """
    gets = samples[samples["op"] == int(AccessOp.GET)]
    n = int(gets.shape[0])
    if n < min_samples or steps == 0:
        return RefitResult(n, 0, None)
    trace = Trace(
        name="agent-samples",
        format="synthetic",
        keys=np.ascontiguousarray(gets["key"], dtype=np.uint64),
        timestamps=np.ascontiguousarray(gets["timestamp"], dtype=np.float64),
    )
    config = TrainConfig(
        train_fraction=_REFIT_TRAIN_FRACTION,
        validation_fraction=1.0 - _REFIT_TRAIN_FRACTION,
        max_samples=_REFIT_MAX_EXAMPLES,
        seed=seed,
        featurizer=featurizer,
    )
    data = build_examples(trace, encoder, model.config, config)
    torch.manual_seed(seed)
    taken, loss = fit_adapter(
        model,
        data.examples,
        data.history,
        data.train_idx,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    return RefitResult(n, taken, None if not taken or math.isnan(loss) else float(loss))
