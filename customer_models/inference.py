"""Batched inference: rank every request's local candidates with the model.

The featurizer walks the trace once; the context encoder runs over large batches of windows and
the scorer over all real candidates of a block at once (flattened, no padding), so one block of
tens of thousands of requests costs a handful of matrix products — never a Python call per
request. A live node uses the same path every ``N`` requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from customer_models.features import N_CTX_FEATURES, CandidateBlock, CandidateFeaturizer
from customer_models.model import AccessModel

#: Candidates kept per request after ranking (top-10 accuracy needs 10).
KEEP = 10
_BLOCK = 1 << 15
_SUB = 1 << 13


@dataclass(frozen=True)
class RankedCandidates:
    """Per-request top candidates by model probability, for requests ``0 .. n - 1``.

    Attributes
    ----------
    cand_ids
        ``int64[n, KEEP]`` dense ids, best first; ``-1`` pads (and fills unscored rows).
    probs
        ``float32[n, KEEP]`` model probability that the candidate is the next request;
        ``-inf`` where padded.
    scored_from
        First request that was scored.
    predictions
        Number of requests ranked by the model.
    seconds
        Wall time of featurization and inference together.
    model_seconds
        Wall time spent in the model alone.
    """

    cand_ids: NDArray[np.int64]
    probs: NDArray[np.float32]
    scored_from: int
    predictions: int
    seconds: float
    model_seconds: float


@torch.no_grad()
def rank_candidates(
    model: AccessModel,
    featurizer: CandidateFeaturizer,
    bucket_of_id: NDArray[np.int64],
    *,
    score_from: int = 0,
    stop: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> RankedCandidates:
    """Advance ``featurizer`` (from position 0) to ``stop`` and rank candidates from ``score_from``.

    Parameters
    ----------
    model
        The model (put in eval mode here). Inference runs on the model's device: move the
        model to a CUDA device (``model.to("cuda")``) to rank on the GPU; inputs are copied
        there block by block and the ranked candidates come back to the CPU. The CPU path is
        the reference; the GPU gives the same ranking up to float rounding.
    featurizer
        A fresh featurizer over the customer's trace (position 0).
    bucket_of_id
        Local key bucket of every dense id.
    score_from
        Requests before this are featurized (tables learn from them) but not scored.
    stop
        End of the range (default: the whole trace).
    progress
        Called with the number of requests processed per block.
    """
    model.eval()
    n = len(featurizer) if stop is None else stop
    window = model.config.window
    cand_out = np.full((n, KEEP), -1, dtype=np.int64)
    prob_out = np.full((n, KEEP), -np.inf, dtype=np.float32)
    history = np.zeros((window - 1, N_CTX_FEATURES), dtype=np.float32)
    started = time.perf_counter()
    model_seconds = 0.0
    predictions = 0
    for block in featurizer.blocks(_BLOCK, n, reuse=True):
        ctx = np.concatenate([history, block.ctx_feats])
        history = ctx[-(window - 1) :].copy() if window > 1 else history
        lo = max(block.start, score_from)
        if lo < block.stop:
            t0 = time.perf_counter()
            _score_block(model, block, ctx, bucket_of_id, lo, cand_out, prob_out)
            model_seconds += time.perf_counter() - t0
            predictions += block.stop - lo
        if progress is not None:
            progress(block.stop - block.start)
    return RankedCandidates(
        cand_ids=cand_out,
        probs=prob_out,
        scored_from=score_from,
        predictions=predictions,
        seconds=time.perf_counter() - started,
        model_seconds=model_seconds,
    )


def _to(array: NDArray[Any], device: torch.device) -> torch.Tensor:
    """Wrap ``array`` as a tensor on ``device`` (no copy on the CPU)."""
    tensor = torch.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device, non_blocking=True)


def _score_block(
    model: AccessModel,
    block: CandidateBlock,
    ctx: NDArray[np.float32],
    bucket_of_id: NDArray[np.int64],
    lo: int,
    cand_out: NDArray[np.int64],
    prob_out: NDArray[np.float32],
) -> None:
    """Score rows ``lo .. block.stop - 1`` of ``block`` into the output arrays."""
    start, stop = block.start, block.stop
    cand_ids, cand_feats = block.cand_ids, block.cand_feats
    window = model.config.window
    device = next(model.parameters()).device
    windows_all = np.lib.stride_tricks.sliding_window_view(ctx, window, axis=0)
    # sliding_window_view puts the window axis last: [rows, F, W] -> [rows, W, F].
    for a in range(lo - start, stop - start, _SUB):
        b = min(a + _SUB, stop - start)
        ids = cand_ids[a:b]
        valid = ids >= 0
        rows, cols = np.nonzero(valid)
        win = _to(np.ascontiguousarray(windows_all[a:b].transpose(0, 2, 1)), device)
        feats = _to(cand_feats[a:b][rows, cols], device)
        buckets = _to(bucket_of_id[ids[rows, cols]], device)
        row_t, col_t = _to(rows, device), _to(cols, device)
        cand_logit, none_logit = model(win, feats, row_t, buckets)
        logits = torch.full((b - a, ids.shape[1] + 1), float("-inf"), device=device)
        logits[row_t, col_t] = cand_logit
        logits[:, -1] = none_logit
        probs = torch.softmax(logits, dim=1)[:, :-1].cpu().numpy()
        probs[~valid] = -np.inf
        k = min(KEEP, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        top_probs = np.take_along_axis(probs, order, axis=1)
        top_ids = np.where(np.isfinite(top_probs), np.take_along_axis(ids, order, axis=1), -1)
        cand_out[start + a : start + b, :k] = top_ids
        prob_out[start + a : start + b, :k] = top_probs
