"""Training examples drawn from one customer's own trace.

An example is one request position ``t``: the context window of the last ``W`` requests' features,
the candidates listed after ``t`` (features, local key buckets), and the label — which candidates
are requested within the next ``horizon`` requests (``horizon = 1``: which one is request
``t + 1``), or "none of them". Candidates and features come from the causal
:class:`~customer_models.features.CandidateFeaturizer`, so an example never sees the future
except through its label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from customer_models.features import N_CTX_FEATURES, CandidateFeaturizer

_BLOCK = 1 << 15


@dataclass(frozen=True)
class Examples:
    """A set of training or validation examples (numpy arrays, one row per example).

    Attributes
    ----------
    positions
        Request index ``t`` of each example.
    cand_feats
        ``float16[S, M, F_cand]`` (half precision to keep memory small; widened per batch).
    cand_buckets
        ``int64[S, M]`` local key buckets (0 where invalid).
    valid
        ``bool[S, M]`` real candidates.
    positive
        ``bool[S, M + 1]``: candidates requested within the label horizon; the last column
        ("none") is set when no candidate is.
    """

    positions: NDArray[np.int64]
    cand_feats: NDArray[np.float16]
    cand_buckets: NDArray[np.int64]
    valid: NDArray[np.bool_]
    positive: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def batch(
        self, index: NDArray[np.int64], ctx: ContextHistory
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return tensors ``(windows, cand_feats, cand_buckets, valid, positive)`` for ``index``."""
        return (
            ctx.windows(self.positions[index]),
            torch.from_numpy(self.cand_feats[index].astype(np.float32)),
            torch.from_numpy(self.cand_buckets[index]),
            torch.from_numpy(self.valid[index]),
            torch.from_numpy(self.positive[index]),
        )


class ContextHistory:
    """Context features of requests ``0 .. n - 1`` with ``window - 1`` zero rows in front.

    Parameters
    ----------
    ctx
        ``float32[n, F_ctx]``.
    window
        Context window length ``W``.
    """

    def __init__(self, ctx: NDArray[np.float32], window: int) -> None:
        pad = np.zeros((window - 1, ctx.shape[1]), dtype=np.float32)
        self._padded = np.concatenate([pad, ctx])
        self._window = window
        self._offsets = np.arange(window, dtype=np.int64)

    def windows(self, positions: NDArray[np.int64]) -> torch.Tensor:
        """Return ``[len(positions), W, F]``: rows ``t - W + 1 .. t`` for each ``t``."""
        idx = positions[:, None] + self._offsets[None, :]
        return torch.from_numpy(self._padded[idx])


def collect_examples(
    featurizer: CandidateFeaturizer,
    stop: int,
    selected: NDArray[np.bool_],
    bucket_of_id: NDArray[np.int64],
    *,
    horizon: int = 1,
    label_stop: int | None = None,
) -> tuple[Examples, NDArray[np.float32]]:
    """Featurize requests ``position .. stop - 1`` and keep the ``selected`` ones as examples.

    Parameters
    ----------
    featurizer
        A featurizer at some position ``p``; it is advanced to ``stop``.
    stop
        End of the range.
    selected
        ``bool[stop - p]``: which positions become examples (rows without any candidate are
        dropped: the model is not consulted there).
    bucket_of_id
        Local bucket of every dense id.
    horizon
        A candidate is a positive if it is requested within the next ``horizon`` requests.
    label_stop
        Labels never look at request ``label_stop`` or later (the end of the training part);
        defaults to ``stop``.

    Returns
    -------
    tuple
        The examples and the context features ``float32[stop - p, F_ctx]`` of every position.
    """
    start = featurizer.position
    ids = featurizer.ids
    limit = stop if label_stop is None else label_stop
    ctx = np.empty((stop - start, N_CTX_FEATURES), dtype=np.float32)
    parts: list[tuple[NDArray[Any], ...]] = []
    feats: list[NDArray[np.float16]] = []
    for block in featurizer.blocks(_BLOCK, stop, reuse=True):
        lo, hi = block.start - start, block.stop - start
        ctx[lo:hi] = block.ctx_feats
        rows = np.flatnonzero(selected[lo:hi] & (block.n_cand > 0))
        if rows.size == 0:
            continue
        cand_ids = block.cand_ids[rows]
        valid = cand_ids >= 0
        m = cand_ids.shape[1]
        positions = rows + block.start
        positive = _positives(ids, cand_ids, positions, horizon, limit)
        buckets = np.where(valid, bucket_of_id[np.maximum(cand_ids, 0)], 0)
        parts.append((positions, buckets, valid, positive))
        feats.append(block.cand_feats[rows].astype(np.float16))
    if not parts:
        m = featurizer.config.max_candidates
        empty = Examples(
            positions=np.zeros(0, dtype=np.int64),
            cand_feats=np.zeros((0, m, 0), dtype=np.float16),
            cand_buckets=np.zeros((0, m), dtype=np.int64),
            valid=np.zeros((0, m), dtype=np.bool_),
            positive=np.zeros((0, m + 1), dtype=np.bool_),
        )
        return empty, ctx
    examples = Examples(
        positions=np.concatenate([p[0] for p in parts]),
        cand_feats=np.concatenate(feats),
        cand_buckets=np.concatenate([p[1] for p in parts]),
        valid=np.concatenate([p[2] for p in parts]),
        positive=np.concatenate([p[3] for p in parts]),
    )
    return examples, ctx


def _positives(
    ids: NDArray[np.int64],
    cand_ids: NDArray[np.int64],
    positions: NDArray[np.int64],
    horizon: int,
    limit: int,
) -> NDArray[np.bool_]:
    """Mark candidates requested at ``t + 1 .. t + horizon`` (before ``limit``); add "none"."""
    hits = np.zeros(cand_ids.shape, dtype=np.bool_)
    for h in range(1, horizon + 1):
        at = positions + h
        inside = at < limit
        future = np.where(inside, ids[np.minimum(at, ids.shape[0] - 1)], -2)
        hits |= (cand_ids == future[:, None]) & (cand_ids >= 0)
    return np.concatenate([hits, ~hits.any(axis=1, keepdims=True)], axis=1)
