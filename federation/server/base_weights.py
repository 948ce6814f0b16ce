"""The shared base as the server holds it: numpy arrays by the model's stable names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from numpy.typing import NDArray

from customer_models import AccessModel, ModelConfig

Weights = dict[str, NDArray[Any]]


def initial_base(model_config: ModelConfig, seed: int) -> Weights:
    """Return the base weights of a freshly initialised :class:`~customer_models.AccessModel`.

    Parameters
    ----------
    model_config
        Model shape (the clients build the same model from the same run config).
    seed
        Seeds the initialisation (the same seed gives the same weights).
    """
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AccessModel(model_config)
    finally:
        torch.random.set_rng_state(generator_state)
    return {name: tensor.numpy().copy() for name, tensor in model.base_state().items()}


def base_layout(model_config: ModelConfig) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Return the name → ``(shape, dtype)`` of every base tensor of ``model_config``."""
    return {name: (w.shape, w.dtype) for name, w in initial_base(model_config, 0).items()}


def layout_mismatch(weights: Mapping[str, NDArray[Any]], model_config: ModelConfig) -> str:
    """Describe how ``weights`` differ from the base of ``model_config`` (``""`` if they fit)."""
    layout = base_layout(model_config)
    extra = sorted(set(weights) - set(layout))
    missing = sorted(set(layout) - set(weights))
    if extra or missing:
        return f"unexpected tensors {extra}, missing {missing}"
    for name, (shape, dtype) in layout.items():
        if weights[name].shape != shape or weights[name].dtype != dtype:
            return (
                f"tensor {name} is {weights[name].dtype}{list(weights[name].shape)}, "
                f"the model needs {dtype}{list(shape)}"
            )
    return ""


def to_array_record(weights: Mapping[str, NDArray[Any]]) -> ArrayRecord:
    """Wrap weights in an :class:`~flwr.app.ArrayRecord` (names kept, order sorted)."""
    return ArrayRecord(
        {name: Array(np.ascontiguousarray(weights[name])) for name in sorted(weights)}
    )


def from_array_record(record: ArrayRecord) -> Weights:
    """Return the arrays of ``record`` by name."""
    return {name: array.numpy() for name, array in record.items()}
