"""Compiled LRU replay with prefetches chosen from scored candidate lists.

:func:`scored_replay_kernel` follows the protocol of :mod:`cache_core.prefetch.kernels` (same
LRU helpers, same counting rules); only the choice of prefetches differs: after request ``t``
it takes row ``t`` of a candidate matrix, orders it by score (descending, ties in list order),
skips invalid, below-threshold and cached candidates, and prefetches the first ``degree``.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.prefetch.kernels import (
    EVICTED_UNUSED,
    HITS,
    ISSUED,
    N_COUNTERS,
    PREDICTIONS,
    REQUESTS,
    TOP1,
    TOP10,
    TOP_K,
    USED,
)
from cache_core.prefetch.lru_kernel import (
    PENDING_TEST,
    PENDING_TRAIN,
    lru_demand,
    lru_prefetch,
)


@njit(cache=True)
def scored_rank(
    row_ids: NDArray[np.int64],
    row_scores: NDArray[np.float32],
    row_valid: NDArray[np.bool_],
    target: int,
    cap: int,
) -> int:  # pragma: no cover - compiled
    """Rank of ``target`` among the valid candidates ordered by score (``-1``: not listed).

    Ties keep list order; a key listed twice ranks at its best entry. Ranks from ``cap`` on are
    reported as ``cap``.
    """
    best = -1
    for j in range(row_ids.shape[0]):
        if row_valid[j] and row_ids[j] == target:
            best = j
            break
    if best < 0:
        return -1
    s = row_scores[best]
    for j in range(best + 1, row_ids.shape[0]):
        if row_valid[j] and row_ids[j] == target and row_scores[j] > s:
            best = j
            s = row_scores[j]
    # Count distinct keys ranked ahead: each key at its best entry.
    rank = 0
    for j in range(row_ids.shape[0]):
        if not row_valid[j] or row_ids[j] == target:
            continue
        sj = row_scores[j]
        if sj > s or (sj == s and j < best):
            first = True
            for k in range(j):
                if row_valid[k] and row_ids[k] == row_ids[j]:
                    sk = row_scores[k]
                    if sk > s or (sk == s and k < best):
                        first = False
                        break
            if first:
                rank += 1
                if rank >= cap:
                    return cap
    return rank


@njit(cache=True)
def _select(
    row_ids: NDArray[np.int64],
    row_scores: NDArray[np.float32],
    row_valid: NDArray[np.bool_],
    threshold: float,
    resident: NDArray[np.bool_],
    buf: NDArray[np.int64],
    buf_score: NDArray[np.float32],
    degree: int,
) -> int:  # pragma: no cover - compiled
    """Fill ``buf`` with the ``degree`` best eligible uncached keys of a row; return the count.

    Eligible: valid, ``id >= 0``, ``score >= threshold``, not resident. Best: highest score,
    ties in list order. A key listed twice competes with its best entry.
    """
    nbuf = 0
    for j in range(row_ids.shape[0]):
        c = row_ids[j]
        s = row_scores[j]
        if not row_valid[j] or c < 0 or not s >= threshold or resident[c]:
            continue
        # A duplicate: keep whichever entry ranks higher (the earlier one on ties).
        dup = -1
        for k in range(nbuf):
            if buf[k] == c:
                dup = k
                break
        if dup >= 0:
            if s <= buf_score[dup]:
                continue
            for k in range(dup, nbuf - 1):
                buf[k] = buf[k + 1]
                buf_score[k] = buf_score[k + 1]
            nbuf -= 1
        # Insert after every entry scoring >= s (stable), if it fits in the top ``degree``.
        pos = nbuf
        while pos > 0 and buf_score[pos - 1] < s:
            pos -= 1
        if pos >= degree:
            continue
        end = nbuf if nbuf < degree else degree - 1
        for k in range(end, pos, -1):
            buf[k] = buf[k - 1]
            buf_score[k] = buf_score[k - 1]
        buf[pos] = c
        buf_score[pos] = s
        if nbuf < degree:
            nbuf += 1
    return nbuf


@njit(cache=True)
def scored_replay_kernel(
    ids: NDArray[np.int64],
    n_ids: int,
    capacity: int,
    cand_ids: NDArray[np.int64],
    scores: NDArray[np.float32],
    valid: NDArray[np.bool_],
    threshold: float,
    degree: int,
    test_start: int,
    stop: int,
    hits_out: NDArray[np.uint8],
) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """Replay ``ids[:stop]`` through an LRU cache, prefetching from scored candidate rows.

    Parameters
    ----------
    ids
        Dense request ids, ``0 .. n_ids - 1``.
    n_ids
        Size of the id space (every request and candidate id is below it).
    capacity
        Cache capacity in objects.
    cand_ids, scores, valid
        Row ``t``: the candidates offered after request ``t`` (``-1`` pads), their scores, and
        which may be used at all.
    threshold, degree
        Minimum score of a prefetch and the prefetch budget per request.
    test_start, stop
        Counting covers requests ``test_start .. stop - 1``; the replay starts at 0.
    hits_out
        Empty, or ``uint8[stop - test_start]`` that receives the hit bit (``1`` hit, ``0``
        miss) of each counted request.

    Returns
    -------
    numpy.ndarray
        ``int64`` counters, indexed like those of
        :func:`cache_core.prefetch.kernels.prefetch_replay_kernel`.
    """
    stats = np.zeros(N_COUNTERS, dtype=np.int64)
    prev = np.full(n_ids, -1, dtype=np.int64)
    nxt = np.full(n_ids, -1, dtype=np.int64)
    state = np.array([-1, -1, 0], dtype=np.int64)
    resident = np.zeros(n_ids, dtype=np.bool_)
    pending = np.zeros(n_ids, dtype=np.int8)
    buf = np.empty(max(degree, 1), dtype=np.int64)
    buf_score = np.empty(max(degree, 1), dtype=np.float32)
    record = hits_out.shape[0] > 0
    for i in range(stop):
        cur = ids[i]
        in_test = i >= test_start
        if in_test:
            stats[REQUESTS] += 1
            if i > 0:
                stats[PREDICTIONS] += 1
                r = scored_rank(cand_ids[i - 1], scores[i - 1], valid[i - 1], cur, TOP_K)
                if r == 0:
                    stats[TOP1] += 1
                if 0 <= r < TOP_K:
                    stats[TOP10] += 1
        # Demand access.
        hit, used, wasted = lru_demand(prev, nxt, state, resident, pending, capacity, cur)
        if hit and in_test:
            stats[HITS] += 1
        if record and in_test:
            hits_out[i - test_start] = 1 if hit else 0
        stats[USED] += used
        stats[EVICTED_UNUSED] += wasted
        # Choose (against the cache as it is now), then insert.
        nbuf = 0
        if degree > 0:
            nbuf = _select(
                cand_ids[i], scores[i], valid[i], threshold, resident, buf, buf_score, degree
            )
        mark = PENDING_TEST if in_test else PENDING_TRAIN
        stats[EVICTED_UNUSED] += lru_prefetch(
            prev, nxt, state, resident, pending, capacity, buf, nbuf, mark
        )
        if in_test:
            stats[ISSUED] += nbuf
    return stats
