"""Fitting the access model on one customer's own trace (plain PyTorch; DP-SGD is in ``privacy``).

Examples are drawn only from the first ``train_fraction`` of the trace (design §4) by
:func:`build_examples` (shared with the federation client and DP-SGD); the end of that part is
held out for early stopping. Training is seeded and reproducible for a given seed,
thread count and trace.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from cache_core.trace import Trace
from customer_models.config import ModelConfig, TrainConfig
from customer_models.dataset import ContextHistory, Examples, collect_examples
from customer_models.errors import TrainingDataError
from customer_models.features import CandidateFeaturizer
from customer_models.keys import KeyEncoder, bucket_of_ids
from customer_models.model import AccessModel

_log = logging.getLogger(__name__)

#: Fewest training examples a model is fitted on.
MIN_EXAMPLES = 256


@dataclass(frozen=True)
class TrainingReport:
    """What training did.

    Attributes
    ----------
    epochs
        Epochs run (including those after the best one, up to the patience).
    best_epoch
        Epoch whose weights were kept (1-based).
    best_validation_loss
        Cross-entropy of the kept weights on the validation examples.
    train_examples, validation_examples
        Example counts.
    train_requests
        Requests of the training part (the model saw nothing after them).
    seconds
        Wall time of featurization and training.
    """

    epochs: int
    best_epoch: int
    best_validation_loss: float
    train_examples: int
    validation_examples: int
    train_requests: int
    seconds: float


def split_points(n: int, config: TrainConfig) -> tuple[int, int]:
    """Return ``(validation_start, train_end)`` for a trace of ``n`` requests."""
    train_end = math.floor(config.train_fraction * n)
    val_start = train_end - math.floor(config.validation_fraction * train_end)
    return val_start, train_end


@dataclass(frozen=True, eq=False)
class TrainingExamples:
    """A customer's featurized examples, split as :func:`train_model` trains on them.

    Attributes
    ----------
    examples
        Every example (training and validation), ordered by position.
    history
        Context windows the examples index.
    train_idx, val_idx
        Rows of ``examples`` in the training and the validation slice.
    val_start, train_end
        Request positions where the validation slice starts and the training part ends
        (:func:`split_points`); labels never look at ``train_end`` or later.
    bucket_of_id
        Local adapter bucket of every dense id of the trace.
    """

    examples: Examples
    history: ContextHistory
    train_idx: NDArray[np.int64]
    val_idx: NDArray[np.int64]
    val_start: int
    train_end: int
    bucket_of_id: NDArray[np.int64]


def build_examples(
    trace: Trace,
    encoder: KeyEncoder,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    rng: np.random.Generator | None = None,
) -> TrainingExamples:
    """Featurize the first ``train_fraction`` of ``trace`` into training and validation examples.

    Positions before the validation start are sampled at a rate giving about ``max_samples``
    training examples, those of the validation slice at a quarter of that; a trace too short
    for both slices gives no examples (empty indices) rather than an error.

    Parameters
    ----------
    trace
        The customer's trace.
    encoder
        The customer's key encoder (local buckets for the adapter).
    model_config, train_config
        Model shape (window, adapter buckets) and sampling settings (``train_fraction``,
        ``validation_fraction``, ``max_samples``, ``label_horizon``, ``featurizer``, ``seed``).
    rng
        Generator the position sampling draws from (default: one seeded with
        ``train_config.seed``); :func:`train_model` passes its own and goes on shuffling with it.

    Returns
    -------
    TrainingExamples
        The examples and their split.

    Examples
    --------
    >>> from cache_core.synthetic import zipf_workload
    >>> trace = zipf_workload(2_000, n_objects=100, alpha=1.0, seed=1)
    >>> data = build_examples(trace, KeyEncoder(b"k" * 16), ModelConfig(), TrainConfig())
    >>> data.train_end, bool(data.train_idx.size > 0), bool(data.val_idx.size > 0)
    (1400, True, True)
    """
    if rng is None:
        rng = np.random.default_rng(train_config.seed)
    val_start, train_end = split_points(len(trace), train_config)
    # The label of position t looks at requests after t: stop one short of the test segment.
    last = train_end - 1
    if val_start < 1 or last <= val_start:
        last = val_start = 0
    selected = np.zeros(last, dtype=np.bool_)
    if last:
        train_rate = min(1.0, train_config.max_samples / val_start)
        val_rate = min(1.0, (train_config.max_samples / 4) / (last - val_start))
        selected[:val_start] = rng.random(val_start) < train_rate
        selected[val_start:] = rng.random(last - val_start) < val_rate
    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, model_config.adapter_buckets)
    featurizer = CandidateFeaturizer(trace, config=train_config.featurizer)
    examples, ctx = collect_examples(
        featurizer,
        last,
        selected,
        buckets,
        horizon=train_config.label_horizon,
        label_stop=train_end,
    )
    is_val = examples.positions >= val_start
    return TrainingExamples(
        examples=examples,
        history=ContextHistory(ctx, model_config.window),
        train_idx=np.flatnonzero(~is_val),
        val_idx=np.flatnonzero(is_val),
        val_start=val_start,
        train_end=train_end,
        bucket_of_id=buckets,
    )


def train_model(
    trace: Trace,
    encoder: KeyEncoder,
    model_config: ModelConfig,
    train_config: TrainConfig,
    *,
    progress: Callable[[str, int, int], object] | None = None,
) -> tuple[AccessModel, TrainingReport]:
    """Fit base and adapter together on the first ``train_fraction`` of ``trace``.

    Parameters
    ----------
    trace
        The customer's trace.
    encoder
        The customer's key encoder (local buckets for the adapter).
    model_config, train_config
        Model shape and training settings.
    progress
        Called as ``progress(stage, done, total)`` during featurization and epochs.

    Returns
    -------
    tuple
        The fitted model (best validation loss) and a :class:`TrainingReport`.

    Raises
    ------
    TrainingDataError
        If the training part yields too few examples.
    """
    started = time.perf_counter()
    torch.set_num_threads(train_config.threads)
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    val_start, train_end = split_points(len(trace), train_config)
    if val_start < 1 or train_end - 1 <= val_start:
        raise TrainingDataError(
            f"trace {trace.name} has {len(trace)} requests: too few to train on"
        )
    data = build_examples(trace, encoder, model_config, train_config, rng=rng)
    examples, history = data.examples, data.history
    train_idx, val_idx = data.train_idx, data.val_idx
    if train_idx.size < MIN_EXAMPLES or val_idx.size == 0:
        raise TrainingDataError(
            f"trace {trace.name} yields {train_idx.size} training and {val_idx.size} validation "
            f"examples; at least {MIN_EXAMPLES} and 1 are needed"
        )

    model = AccessModel(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.learning_rate)
    best_loss = math.inf
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_epoch = 0
    epoch = 0
    for epoch in range(1, train_config.max_epochs + 1):
        model.train()
        order = rng.permutation(train_idx)
        for i in range(0, order.size, train_config.batch_size):
            loss = _loss(model, examples, order[i : i + train_config.batch_size], history)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        val_loss = evaluate_loss(model, examples, val_idx, history)
        _log.info("epoch %d: validation loss %.4f", epoch, val_loss)
        if progress is not None:
            progress("epoch", epoch, train_config.max_epochs)
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= train_config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    report = TrainingReport(
        epochs=epoch,
        best_epoch=best_epoch,
        best_validation_loss=best_loss,
        train_examples=int(train_idx.size),
        validation_examples=int(val_idx.size),
        train_requests=train_end,
        seconds=time.perf_counter() - started,
    )
    return model, report


def _loss(
    model: AccessModel, examples: Examples, index: np.ndarray, history: ContextHistory
) -> torch.Tensor:
    windows, feats, buckets, valid, positive = examples.batch(index, history)
    logits = model.padded_logits(windows, feats, buckets, valid)
    return multi_positive_loss(logits, positive)


def multi_positive_loss(
    logits: torch.Tensor, positive: torch.Tensor, *, reduction: Literal["mean", "none"] = "mean"
) -> torch.Tensor:
    """``-log`` of the probability mass on the positive columns, per example or averaged.

    With exactly one positive per row this is the usual cross-entropy.

    Parameters
    ----------
    logits
        ``[B, M + 1]`` padded logits ("none" last, ``-inf`` for missing candidates).
    positive
        ``bool[B, M + 1]`` positives (at least one per row).
    reduction
        ``"mean"`` (the default): the batch mean, a scalar; ``"none"``: the loss of each
        example, ``[B]`` (what DP-SGD clips per example).

    Returns
    -------
    torch.Tensor
        A scalar, or ``[B]`` with ``reduction="none"``.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    everything = torch.logsumexp(logits, dim=1)
    on_positive = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    per_example = everything - on_positive
    return per_example.mean() if reduction == "mean" else per_example


@torch.no_grad()
def evaluate_loss(
    model: AccessModel, examples: Examples, index: np.ndarray, history: ContextHistory
) -> float:
    """Mean cross-entropy of ``model`` on the examples at ``index``."""
    model.eval()
    total = 0.0
    for i in range(0, index.size, 4096):
        part = index[i : i + 4096]
        total += float(_loss(model, examples, part, history)) * part.size
    return total / max(index.size, 1)
