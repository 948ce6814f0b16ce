"""A customer's training and validation examples, drawn by :func:`customer_models.build_examples`.

Examples come only from the first ``train_fraction`` of the customer's trace (design §4; each
customer of a scenario has its own); the end of that part is the validation slice. Featurization
is the costly step, so the examples of the last few ``(trace, key table, model, sampling)``
combinations are kept in memory: a simulated client process plays the same customer round after
round.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cache_core.trace import Trace
from customer_models import KeyEncoder, ModelConfig, TrainConfig, build_examples
from customer_models.dataset import ContextHistory, Examples


@dataclass(frozen=True, eq=False)
class CustomerExamples:
    """Featurized examples of one customer.

    Attributes
    ----------
    examples
        Every example (training and validation).
    history
        Context windows of the examples.
    train_index, validation_index
        Rows of ``examples`` in the training and validation slices.
    train_fraction
        Share of the customer's trace the examples were drawn from.
    """

    examples: Examples
    history: ContextHistory
    train_index: NDArray[np.int64]
    validation_index: NDArray[np.int64]
    train_fraction: float = TrainConfig().train_fraction


def customer_examples(
    trace: Trace,
    encoder: KeyEncoder,
    model_config: ModelConfig,
    *,
    max_samples: int,
    seed: int,
    label_horizon: int = 1,
    train_fraction: float = TrainConfig().train_fraction,
) -> CustomerExamples:
    """Featurize ``trace``'s training part into examples (cached; see the module docstring).

    Parameters
    ----------
    trace
        The customer's trace.
    encoder
        The customer's key encoder (local buckets of the adapter).
    model_config
        Model shape (window, adapter buckets).
    max_samples
        Training positions sampled from the training part (validation: a quarter of it).
    seed
        Seeds the sampling.
    label_horizon
        A candidate is a positive if requested within this many requests.
    train_fraction
        The customer's training share of ``trace``.
    """
    key = (
        trace.name,
        len(trace),
        encoder.fingerprint(),
        model_config,
        max_samples,
        seed,
        label_horizon,
        train_fraction,
    )
    found = _CACHE.get(key)
    if found is None:
        config = TrainConfig(
            train_fraction=train_fraction,
            max_samples=max_samples,
            seed=seed,
            label_horizon=label_horizon,
        )
        data = build_examples(trace, encoder, model_config, config)
        found = CustomerExamples(
            examples=data.examples,
            history=data.history,
            train_index=data.train_idx,
            validation_index=data.val_idx,
            train_fraction=train_fraction,
        )
        _CACHE[key] = found
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return found


#: Customers whose examples one process keeps. A deployed SuperNode plays one customer; in
#: simulation one Ray worker plays them all, and with fewer slots than customers (the default
#: scenario has 10) every customer would be featurized again every round. One customer's
#: examples take roughly ``max_samples × max_candidates × features × 2`` bytes (about 25 MB by
#: default).
_CACHE_SIZE = 16
_CACHE: OrderedDict[tuple[object, ...], CustomerExamples] = OrderedDict()
