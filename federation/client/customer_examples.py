"""A customer's training and validation examples, as :func:`customer_models.train_model` draws them.

Examples come only from the first ``train_fraction`` of the customer's trace (design §4); the end
of that part is the validation slice. Featurization is the costly step, so the examples of the
last few ``(trace, key table, model, sampling)`` combinations are kept in memory: a simulated
client process plays the same customer round after round.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cache_core.trace import Trace
from customer_models import KeyEncoder, ModelConfig, TrainConfig, bucket_of_ids, split_points
from customer_models.dataset import ContextHistory, Examples, collect_examples
from customer_models.features import CandidateFeaturizer


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
    """

    examples: Examples
    history: ContextHistory
    train_index: NDArray[np.int64]
    validation_index: NDArray[np.int64]


def customer_examples(
    trace: Trace,
    encoder: KeyEncoder,
    model_config: ModelConfig,
    *,
    max_samples: int,
    seed: int,
    label_horizon: int = 1,
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
    """
    key = (
        trace.name,
        len(trace),
        encoder.fingerprint(),
        model_config,
        max_samples,
        seed,
        label_horizon,
    )
    found = _CACHE.get(key)
    if found is None:
        found = _featurize(trace, encoder, model_config, max_samples, seed, label_horizon)
        _CACHE[key] = found
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return found


_CACHE_SIZE = 4
_CACHE: OrderedDict[tuple[object, ...], CustomerExamples] = OrderedDict()


def _featurize(
    trace: Trace,
    encoder: KeyEncoder,
    model_config: ModelConfig,
    max_samples: int,
    seed: int,
    label_horizon: int,
) -> CustomerExamples:
    config = TrainConfig(max_samples=max_samples, seed=seed, label_horizon=label_horizon)
    rng = np.random.default_rng(seed)
    val_start, train_end = split_points(len(trace), config)
    # The labels of position t look at requests after t: stop one short of the test segment.
    last = train_end - 1
    if val_start < 1 or last <= val_start:
        last = val_start = 0
    selected = np.zeros(last, dtype=np.bool_)
    if last:
        train_rate = min(1.0, max_samples / val_start)
        val_rate = min(1.0, (max_samples / 4) / (last - val_start))
        selected[:val_start] = rng.random(val_start) < train_rate
        selected[val_start:] = rng.random(last - val_start) < val_rate
    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, model_config.adapter_buckets)
    featurizer = CandidateFeaturizer(trace, config=config.featurizer)
    examples, ctx = collect_examples(
        featurizer, last, selected, buckets, horizon=label_horizon, label_stop=train_end
    )
    is_val = examples.positions >= val_start
    return CustomerExamples(
        examples=examples,
        history=ContextHistory(ctx, model_config.window),
        train_index=np.flatnonzero(~is_val),
        validation_index=np.flatnonzero(is_val),
    )
