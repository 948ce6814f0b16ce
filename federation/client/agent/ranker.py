"""Learned prefetching over a replayed stream: causal featurization, batch by batch scoring.

A :class:`StreamFeaturizer` walks the replayed trace with one
:class:`~customer_models.features.CandidateFeaturizer` (its successor tables learn from every
request, in order) and keeps the context features of the last requests, so any number of
models — the champion, a challenger — can score the same block of candidates with the context
they would have had from the start. :class:`ModelRanker` turns one model's scores into ranked
candidate keys above its confidence threshold. Both run once per batch, off the serving path:
the serving loop only reads the ranked lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from cache_core.trace import Trace
from customer_models import AccessModel, KeyEncoder, bucket_of_ids
from customer_models.features import (
    N_CTX_FEATURES,
    CandidateBlock,
    CandidateFeaturizer,
    FeaturizerConfig,
)

#: Ranked candidates kept per request.
KEEP = 10
#: Longest context window a model may read (ModelConfig.window is far smaller in practice).
_MAX_WINDOW = 256


class StreamFeaturizer:
    """One causal featurizer over a replayed trace, advanced a block at a time.

    Parameters
    ----------
    trace
        The replayed trace (the featurizer numbers its keys up front, but row ``t`` of a block
        depends on requests ``0 .. t`` only).
    config
        Table widths and candidate-list length (from the model's manifest).
    """

    def __init__(self, trace: Trace, config: FeaturizerConfig) -> None:
        self._featurizer = CandidateFeaturizer(trace, config=config)
        ids = trace.dense_ids
        self._key_of = np.zeros(max(trace.unique_objects, 1), dtype=np.uint64)
        self._key_of[ids] = trace.keys
        self._ctx_tail = np.zeros((_MAX_WINDOW - 1, N_CTX_FEATURES), dtype=np.float32)
        self._tail_before = self._ctx_tail
        self._trace = trace
        self._buckets: dict[tuple[str, int], NDArray[np.int64]] = {}

    @property
    def config(self) -> FeaturizerConfig:
        """The featurizer's configuration."""
        return self._featurizer.config

    @property
    def position(self) -> int:
        """The next request to featurize."""
        return self._featurizer.position

    @property
    def key_of(self) -> NDArray[np.uint64]:
        """Raw key of every dense id of the trace."""
        return self._key_of

    def buckets(self, encoder: KeyEncoder, n_buckets: int) -> NDArray[np.int64]:
        """Return the customer's adapter bucket of every dense id (computed once per size)."""
        tag = (encoder.fingerprint(), n_buckets)
        found = self._buckets.get(tag)
        if found is None:
            trace = self._trace
            found = bucket_of_ids(encoder, trace.dense_ids, trace.keys, n_buckets)
            self._buckets[tag] = found
        return found

    def advance(self, stop: int) -> CandidateBlock:
        """Featurize requests ``position .. stop - 1`` and return their block.

        The context rows before the block stay available to :meth:`context` until the next
        call.
        """
        block = self._featurizer.block(self._featurizer.position, stop)
        self._tail_before = self._ctx_tail
        joined = np.concatenate([self._ctx_tail, block.ctx_feats])
        self._ctx_tail = joined[-(_MAX_WINDOW - 1) :].copy()
        return block

    def skip_to(self, stop: int, block_size: int = 1 << 15) -> None:
        """Advance to ``stop`` without keeping the blocks (a late-starting model catches up)."""
        while self.position < stop:
            self.advance(min(self.position + block_size, stop))

    def context(self, block: CandidateBlock, window: int) -> NDArray[np.float32]:
        """Return ``float32[len(block) + window - 1, F]``: the context rows a model reads."""
        if not 1 <= window <= _MAX_WINDOW:
            raise ValueError(f"context window must be in [1, {_MAX_WINDOW}], got {window}")
        before = self._tail_before[len(self._tail_before) - (window - 1) :] if window > 1 else None
        if before is None:
            return block.ctx_feats
        return np.concatenate([before, block.ctx_feats])


@dataclass(frozen=True, eq=False)
class RankedBlock:
    """Ranked candidates of one block: raw keys and probabilities, best first.

    Attributes
    ----------
    keys
        ``uint64[n, KEEP]`` candidate keys (0 where ``probs`` is ``-inf``).
    probs
        ``float32[n, KEEP]`` the model's probability that each is the next request.
    """

    keys: NDArray[np.uint64]
    probs: NDArray[np.float32]

    def lists(self, threshold: float) -> list[list[int]]:
        """Return, per request, the candidate keys scoring at least ``threshold``, best first."""
        keep = self.probs >= threshold
        rows = self.keys.tolist()
        masks = keep.tolist()
        return [
            [k for k, ok in zip(row, mask, strict=True) if ok]
            for row, mask in zip(rows, masks, strict=True)
        ]


class ModelRanker:
    """Score a :class:`StreamFeaturizer`'s blocks with one model.

    Parameters
    ----------
    model
        The access model (base + the customer's adapter).
    stream
        The featurizer it reads.
    encoder
        The customer's key encoder (adapter buckets).
    threshold
        Confidence a candidate needs to be prefetched.
    """

    def __init__(
        self, model: AccessModel, stream: StreamFeaturizer, encoder: KeyEncoder, threshold: float
    ) -> None:
        self.model = model
        self.threshold = float(threshold)
        self.stream = stream
        self._bucket_of_id = stream.buckets(encoder, model.config.adapter_buckets)
        model.eval()

    def __repr__(self) -> str:
        return f"ModelRanker(threshold={self.threshold}, window={self.model.config.window})"

    @torch.no_grad()
    def rank(self, block: CandidateBlock) -> RankedBlock:
        """Return the ranked candidates of every request of ``block``."""
        model = self.model
        window = model.config.window
        ctx = self.stream.context(block, window)
        n = len(block)
        keys_out = np.zeros((n, KEEP), dtype=np.uint64)
        probs_out = np.full((n, KEEP), -np.inf, dtype=np.float32)
        if n == 0:
            return RankedBlock(keys_out, probs_out)
        windows = np.lib.stride_tricks.sliding_window_view(ctx, window, axis=0)
        ids = block.cand_ids
        valid = ids >= 0
        rows, cols = np.nonzero(valid)
        win = torch.from_numpy(np.ascontiguousarray(windows.transpose(0, 2, 1)))
        feats = torch.from_numpy(np.ascontiguousarray(block.cand_feats[rows, cols]))
        buckets = torch.from_numpy(self._bucket_of_id[ids[rows, cols]])
        row_t, col_t = torch.from_numpy(rows), torch.from_numpy(cols)
        cand_logit, none_logit = model(win, feats, row_t, buckets)
        logits = torch.full((n, ids.shape[1] + 1), float("-inf"))
        logits[row_t, col_t] = cand_logit
        logits[:, -1] = none_logit
        probs = torch.softmax(logits, dim=1)[:, :-1].numpy()
        probs[~valid] = -np.inf
        k = min(KEEP, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(probs, order, axis=1)
        top_ids = np.take_along_axis(ids, order, axis=1)
        usable = np.isfinite(top)
        keys_out[:, :k] = np.where(usable, self.stream.key_of[np.maximum(top_ids, 0)], 0)
        probs_out[:, :k] = np.where(usable, top, -np.inf)
        return RankedBlock(keys_out, probs_out)
