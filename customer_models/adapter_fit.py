"""Fitting only the customer adapter on top of a frozen shared base.

This is what a customer that has just joined gets on day one: the federated base as it is,
with a fresh adapter fitted for a small, fixed number of steps on the customer's own training
examples. The base's weights are not changed (they receive no optimizer updates and no
gradients are computed for them).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray

from customer_models.dataset import ContextHistory, Examples
from customer_models.model import AccessModel
from customer_models.training import multi_positive_loss


def fit_adapter(
    model: AccessModel,
    examples: Examples,
    history: ContextHistory,
    index: NDArray[np.int64],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> tuple[int, float]:
    """Train ``model``'s adapter for ``steps`` Adam steps with the base frozen (in place).

    Batches are drawn by cycling through shuffled passes over ``index`` until ``steps`` steps
    are taken.

    Parameters
    ----------
    model
        The model whose base stays fixed and whose adapter is trained.
    examples, history
        The customer's featurized examples and their context windows.
    index
        Rows of ``examples`` to train on (the customer's training slice).
    steps
        Optimizer steps to take (0, or an empty ``index``: none).
    batch_size, learning_rate
        Optimiser settings.
    seed
        Seeds shuffling.

    Returns
    -------
    tuple
        Steps taken and their mean loss (``nan`` when none were taken).

    Raises
    ------
    ValueError
        If ``steps`` is negative or ``batch_size`` is not positive.
    """
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    if steps == 0 or index.size == 0:
        model.eval()
        return 0, math.nan
    rng = np.random.default_rng(seed)
    adapter_params = list(model.adapter.parameters())
    frozen = [p for n, p in model.named_parameters() if not n.startswith("adapter.")]
    saved = [p.requires_grad for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(adapter_params, lr=learning_rate)
    taken, total = 0, 0.0
    model.train()
    try:
        while taken < steps:
            order = rng.permutation(index)
            for start in range(0, order.size, batch_size):
                windows, feats, buckets, valid, positive = examples.batch(
                    order[start : start + batch_size], history
                )
                loss = multi_positive_loss(
                    model.padded_logits(windows, feats, buckets, valid), positive
                )
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += float(loss.detach())
                taken += 1
                if taken >= steps:
                    break
    finally:
        for p, flag in zip(frozen, saved, strict=True):
            p.requires_grad_(flag)
        model.eval()
    return taken, total / taken
