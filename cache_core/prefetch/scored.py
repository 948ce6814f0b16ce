"""Prefetch-aware replay of scored candidate lists (the replay of a learned prefetcher).

A learned prefetcher offers, after each request, a row of candidate keys with scores.
:func:`replay_scored` replays the trace through an LRU cache exactly as
:func:`~cache_core.prefetch.evaluate_prefetch` does (design §4, the protocol of
:mod:`cache_core.prefetch.reference`) and, after each request, prefetches the best-scored
uncached candidates of its row, at most ``degree``, only those scoring at least ``threshold``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import InvalidCapacityError
from cache_core.prefetch.counts import PrefetchCounts
from cache_core.prefetch.errors import InvalidPrefetchConfigError
from cache_core.prefetch.hit_bits import NO_HITS, hits_buffer
from cache_core.prefetch.kernels import (
    EVICTED_UNUSED,
    HITS,
    ISSUED,
    PREDICTIONS,
    REQUESTS,
    TOP1,
    TOP10,
    USED,
)
from cache_core.prefetch.scored_kernel import scored_replay_kernel

_warmed = False


@dataclass(frozen=True)
class ScoredEvaluation:
    """Section 4 figures of a scored replay, counted on requests ``test_start .. stop - 1``.

    The fields shared with :class:`~cache_core.prefetch.PrefetchEvaluation` have the same names
    and meanings.

    Attributes
    ----------
    capacity, degree, threshold
        LRU capacity in objects, prefetch budget per request, minimum score of a prefetch.
    test_start, stop
        The counted range; the replay itself starts at request 0 and ends before ``stop``.
    requests_evaluated, hits, hit_ratio
        Counted demand requests, those that hit, and their ratio.
    prefetch_issued, prefetch_used, prefetch_evicted_unused
        Prefetches issued after counted requests; of those, the ones hit before eviction, and
        the ones evicted without a hit.
    prefetch_precision
        ``prefetch_used / prefetch_issued`` (0 when nothing was issued).
    prefetches_per_request
        ``prefetch_issued / requests_evaluated``.
    top1_accuracy, top10_accuracy
        Share of counted requests (with a previous request) whose key was the best-scored, or
        among the ten best-scored, valid candidates of the previous request's row, before
        threshold and cache filtering.
    predict_seconds
        Wall time of the compiled replay (compilation excluded).
    counts
        The raw counters.
    """

    capacity: int
    degree: int
    threshold: float
    test_start: int
    stop: int
    requests_evaluated: int
    hits: int
    hit_ratio: float
    prefetch_issued: int
    prefetch_used: int
    prefetch_evicted_unused: int
    prefetch_precision: float
    prefetches_per_request: float
    top1_accuracy: float
    top10_accuracy: float
    predict_seconds: float
    counts: PrefetchCounts

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dictionary (``counts`` nested)."""
        return asdict(self)


def _int(value: object, what: str, minimum: int, maximum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise InvalidPrefetchConfigError(f"{what} must be an integer {bound}, got {value!r}")
    return int(value)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _warm_up() -> None:
    """Compile (or load from numba's cache) the kernel once, off the clock."""
    global _warmed
    if not _warmed:
        ids = np.array([0, 1, 0], dtype=np.int64)
        cands = np.array([[1, -1], [0, 1], [1, -1]], dtype=np.int64)
        scores = np.zeros((3, 2), dtype=np.float32)
        scored_replay_kernel(ids, 2, 1, cands, scores, cands >= 0, 0.0, 1, 0, 3, NO_HITS)
        _warmed = True


def _prepare(
    ids: NDArray[np.integer[Any]],
    cand_ids: NDArray[np.integer[Any]],
    scores: NDArray[np.floating[Any]],
    cand_valid: NDArray[np.bool_] | None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.bool_], int]:
    """Check and convert the arrays; return them with the size of the id space."""
    ids_a = np.asarray(ids)
    cand_a = np.asarray(cand_ids)
    if ids_a.ndim != 1 or (ids_a.size and not np.issubdtype(ids_a.dtype, np.integer)):
        raise InvalidPrefetchConfigError("ids must be a one-dimensional integer array")
    n = ids_a.shape[0]
    if cand_a.ndim != 2 or cand_a.shape[0] != n or not np.issubdtype(cand_a.dtype, np.integer):
        raise InvalidPrefetchConfigError(
            f"cand_ids must be an integer array of shape ({n}, M), got {cand_a.dtype}{cand_a.shape}"
        )
    scores_a = np.asarray(scores)
    if scores_a.shape != cand_a.shape:
        raise InvalidPrefetchConfigError(
            f"scores shape {scores_a.shape} does not match cand_ids {cand_a.shape}"
        )
    valid = cand_a >= 0
    if cand_valid is not None:
        mask = np.asarray(cand_valid)
        if mask.shape != cand_a.shape or mask.dtype != np.bool_:
            raise InvalidPrefetchConfigError(
                f"cand_valid must be a bool array of shape {cand_a.shape}, got "
                f"{mask.dtype}{mask.shape}"
            )
        valid &= mask
    ids64 = np.ascontiguousarray(ids_a, dtype=np.int64)
    cand64 = np.ascontiguousarray(cand_a, dtype=np.int64)
    scores32 = np.ascontiguousarray(scores_a, dtype=np.float32)
    if np.isnan(scores32[valid]).any():
        raise InvalidPrefetchConfigError("scores of valid candidates must not be NaN")
    if n and ids64.min() < 0:
        raise InvalidPrefetchConfigError("ids must be non-negative dense ids")
    n_ids = int(ids64.max()) + 1 if n else 1
    if valid.any():
        n_ids = max(n_ids, int(cand64[valid].max()) + 1)
    return ids64, cand64, scores32, valid, n_ids


def replay_scored(
    ids: NDArray[np.integer[Any]],
    capacity: int,
    cand_ids: NDArray[np.integer[Any]],
    scores: NDArray[np.floating[Any]],
    *,
    threshold: float,
    degree: int,
    test_start: int,
    stop: int | None = None,
    cand_valid: NDArray[np.bool_] | None = None,
    hits_out: NDArray[np.uint8] | None = None,
) -> ScoredEvaluation:
    """Replay ``ids`` through an LRU cache, prefetching from scored candidate rows.

    The protocol is that of :func:`~cache_core.prefetch.evaluate_prefetch`: the cache starts
    empty at request 0; a hit moves the key to the most-recently-used end and counts a pending
    prefetch of it as used (once); a miss inserts it there, evicting from the other end. After
    request ``t``, row ``t`` is ordered by score, descending, ties in list order; invalid
    candidates (``cand_ids < 0`` or ``cand_valid`` false), those scoring below ``threshold``
    and cached ones are skipped, and the first ``degree`` left are inserted like demand misses,
    competing for ``capacity``. Counting covers requests ``test_start .. stop - 1``; prefetches
    count as issued when issued after a counted request.

    Parameters
    ----------
    ids
        Dense, non-negative request ids of the whole trace (``n`` requests).
    capacity
        LRU capacity in objects; a positive integer.
    cand_ids
        ``int[n, M]``: row ``t`` lists the candidates offered after request ``t``; ``-1`` pads.
        Ids share the space of ``ids``.
    scores
        ``float[n, M]`` scores (higher is better; ``±inf`` allowed, NaN only where invalid).
    threshold
        Minimum score of a prefetch (``-inf``: any valid candidate; ``+inf``: only ``+inf``).
    degree
        At most this many prefetches per request; ``0`` replays plain LRU.
    test_start
        First counted request.
    stop
        End of the replay and of counting (default ``n``), e.g. the end of a validation slice
        inside the training part when choosing a threshold.
    cand_valid
        Optional ``bool[n, M]`` mask of usable candidates.
    hits_out
        Optional writable ``uint8`` array of ``stop - test_start`` elements that receives the
        outcome of every counted request, in order (``1`` hit, ``0`` miss): the stream an A/B
        test or a drift detector reads. Nothing else changes when it is given.

    Returns
    -------
    ScoredEvaluation
        The counters and section 4 ratios.

    Raises
    ------
    InvalidCapacityError
        If ``capacity`` is not a positive integer.
    InvalidPrefetchConfigError
        If an array has the wrong shape or type (``hits_out`` included), a valid score is NaN,
        or ``threshold``, ``degree``, ``test_start`` or ``stop`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> ids = np.array([0, 1, 2, 0, 1, 2])
    >>> nxt = np.array([[1], [2], [0], [1], [2], [0]])
    >>> ev = replay_scored(ids, 2, nxt, np.ones((6, 1)), threshold=0.5, degree=1, test_start=0)
    >>> ev.hits, ev.prefetch_issued, ev.prefetch_used, ev.top1_accuracy
    (5, 6, 5, 1.0)
    >>> bits = np.zeros(6, dtype=np.uint8)
    >>> _ = replay_scored(
    ...     ids, 2, nxt, np.ones((6, 1)), threshold=0.5, degree=1, test_start=0, hits_out=bits
    ... )
    >>> bits.tolist()
    [0, 1, 1, 1, 1, 1]
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
        raise InvalidCapacityError(f"capacity must be a positive integer, got {capacity!r}")
    degree = _int(degree, "degree", 0)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise InvalidPrefetchConfigError(f"threshold must be a number, got {threshold!r}")
    if math.isnan(threshold):
        raise InvalidPrefetchConfigError("threshold must not be NaN")
    ids64, cand64, scores32, valid, n_ids = _prepare(ids, cand_ids, scores, cand_valid)
    n = ids64.shape[0]
    stop_i = n if stop is None else _int(stop, "stop", 0, n)
    start_i = _int(test_start, "test_start", 0, stop_i)
    hits = hits_buffer(hits_out, stop_i - start_i)
    _warm_up()
    started = time.perf_counter()
    stats = scored_replay_kernel(
        ids64,
        n_ids,
        int(capacity),
        cand64,
        scores32,
        valid,
        float(threshold),
        degree,
        start_i,
        stop_i,
        hits,
    )
    seconds = time.perf_counter() - started
    counts = PrefetchCounts(
        requests=int(stats[REQUESTS]),
        hits=int(stats[HITS]),
        prefetch_issued=int(stats[ISSUED]),
        prefetch_used=int(stats[USED]),
        prefetch_evicted_unused=int(stats[EVICTED_UNUSED]),
        predictions=int(stats[PREDICTIONS]),
        top1=int(stats[TOP1]),
        top10=int(stats[TOP10]),
    )
    return ScoredEvaluation(
        capacity=int(capacity),
        degree=degree,
        threshold=float(threshold),
        test_start=start_i,
        stop=stop_i,
        requests_evaluated=counts.requests,
        hits=counts.hits,
        hit_ratio=_ratio(counts.hits, counts.requests),
        prefetch_issued=counts.prefetch_issued,
        prefetch_used=counts.prefetch_used,
        prefetch_evicted_unused=counts.prefetch_evicted_unused,
        prefetch_precision=_ratio(counts.prefetch_used, counts.prefetch_issued),
        prefetches_per_request=_ratio(counts.prefetch_issued, counts.requests),
        top1_accuracy=_ratio(counts.top1, counts.predictions),
        top10_accuracy=_ratio(counts.top10, counts.predictions),
        predict_seconds=seconds,
        counts=counts,
    )
