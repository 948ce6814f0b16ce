"""Fitting the access model on one customer's own trace (plain PyTorch; DP comes later).

Examples are drawn only from the first ``train_fraction`` of the trace (design §4); the end of
that part is held out for early stopping. Training is seeded and reproducible for a given seed,
thread count and trace.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

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
    # The label of position t is request t + 1: stop one short of the test segment.
    last = train_end - 1
    if val_start < 1 or last <= val_start:
        raise TrainingDataError(
            f"trace {trace.name} has {len(trace)} requests: too few to train on"
        )
    selected = np.zeros(last, dtype=np.bool_)
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
    history = ContextHistory(ctx, model_config.window)
    is_val = examples.positions >= val_start
    train_idx = np.flatnonzero(~is_val)
    val_idx = np.flatnonzero(is_val)
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


def multi_positive_loss(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean of ``-log`` of the probability mass on the positive columns.

    With exactly one positive per row this is the usual cross-entropy.
    """
    everything = torch.logsumexp(logits, dim=1)
    on_positive = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (everything - on_positive).mean()


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
