"""The compiled prefetch-aware replay: one numba loop over the trace for every prefetcher.

:func:`prefetch_replay_kernel` follows the protocol of :mod:`cache_core.prefetch.reference` step
by step on dense ids; the prefetcher is chosen by ``mode`` (``MODE_*``), and arrays a mode does
not use are passed as 1 x 1 placeholders so that a single compiled specialisation serves all.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.prefetch.lru_kernel import (
    PENDING_TEST,
    PENDING_TRAIN,
    lru_demand,
    lru_prefetch,
)
from cache_core.prefetch.table_kernel import table_position, table_update

MODE_NONE = 0
MODE_NEXT = 1
MODE_MARKOV = 2
MODE_MARKOV2 = 3

#: Indices of the counters returned by :func:`prefetch_replay_kernel`.
REQUESTS, HITS, ISSUED, USED, EVICTED_UNUSED, PREDICTIONS, TOP1, TOP10 = range(8)
N_COUNTERS = 8

#: Length of the ranked list scored by the top-k accuracy.
TOP_K = 10


@njit(cache=True)
def _merged_rank(
    succ2: NDArray[np.int32],
    len2: NDArray[np.int32],
    r2: int,
    succ1: NDArray[np.int32],
    len1: NDArray[np.int32],
    r1: int,
    target: int,
) -> int:  # pragma: no cover - compiled
    """Rank of ``target`` in row ``r2`` of table 2 followed by the new keys of row ``r1``."""
    n2 = len2[r2] if r2 >= 0 else 0
    for i in range(n2):
        if succ2[r2, i] == target:
            return i
    pos = n2
    for i in range(len1[r1]):
        s = succ1[r1, i]
        if s == target:
            return pos
        listed = False
        for j in range(n2):
            if succ2[r2, j] == s:
                listed = True
                break
        if not listed:
            pos += 1
    return -1


@njit(cache=True)
def _rank(
    mode: int,
    prev: int,
    prev_ctx: int,
    target: int,
    next_ids: NDArray[np.int64],
    succ1: NDArray[np.int32],
    len1: NDArray[np.int32],
    succ2: NDArray[np.int32],
    len2: NDArray[np.int32],
) -> int:  # pragma: no cover - compiled
    """Rank of ``target`` in the unfiltered list predicted after ``prev`` (-1: absent)."""
    if mode == MODE_NEXT:
        for j in range(min(TOP_K, next_ids.shape[1])):
            if next_ids[prev, j] == target:
                return j
        return -1
    if mode == MODE_MARKOV:
        return table_position(succ1, len1, prev, target)
    return _merged_rank(succ2, len2, prev_ctx, succ1, len1, prev, target)


@njit(cache=True)
def _collect(
    buf: NDArray[np.int64],
    nbuf: int,
    degree: int,
    resident: NDArray[np.bool_],
    succ: NDArray[np.int32],
    length: NDArray[np.int32],
    row: int,
) -> int:  # pragma: no cover - compiled
    """Append the uncached, not yet listed keys of ``row`` to ``buf`` up to ``degree``."""
    for i in range(length[row]):
        if nbuf >= degree:
            break
        s = succ[row, i]
        if resident[s]:
            continue
        listed = False
        for j in range(nbuf):
            if buf[j] == s:
                listed = True
                break
        if not listed:
            buf[nbuf] = s
            nbuf += 1
    return nbuf


@njit(cache=True)
def prefetch_replay_kernel(
    ids: NDArray[np.int64],
    n_ids: int,
    capacity: int,
    degree: int,
    test_start: int,
    mode: int,
    next_ids: NDArray[np.int64],
    ctx_rows: NDArray[np.int64],
    succ1: NDArray[np.int32],
    count1: NDArray[np.int32],
    len1: NDArray[np.int32],
    succ2: NDArray[np.int32],
    count2: NDArray[np.int32],
    len2: NDArray[np.int32],
    hits_out: NDArray[np.uint8],
) -> NDArray[np.int64]:  # pragma: no cover - compiled
    """Replay dense ``ids`` through an LRU cache of ``capacity`` objects with a prefetcher.

    Parameters
    ----------
    ids
        Dense request ids, ``0 .. n_ids - 1``.
    n_ids
        Size of the id space (requested ids plus any ids only a prefetcher can name).
    capacity, degree, test_start
        Cache capacity in objects, prefetch budget per request, first test-segment index.
    mode
        ``MODE_NONE``, ``MODE_NEXT``, ``MODE_MARKOV`` or ``MODE_MARKOV2``.
    next_ids
        ``MODE_NEXT``: ``next_ids[x, j]`` is the id of key(x) + j + 1 (``-1`` if none); at least
        ``max(degree, TOP_K)`` columns.
    ctx_rows
        ``MODE_MARKOV2``: row of the pair context ``(ids[i - 1], ids[i])`` in table 2
        (``-1`` at ``i = 0``).
    succ1, count1, len1, succ2, count2, len2
        Empty first-order (one row per requested id) and second-order (one row per pair
        context) tables; they are filled in place.
    hits_out
        Empty, or ``uint8[len(ids) - test_start]`` that receives the hit bit (``1`` hit, ``0``
        miss) of each test-segment request.

    Returns
    -------
    numpy.ndarray
        ``int64`` counters, indexed by ``REQUESTS`` .. ``TOP10``.
    """
    stats = np.zeros(N_COUNTERS, dtype=np.int64)
    prev = np.full(n_ids, -1, dtype=np.int64)
    nxt = np.full(n_ids, -1, dtype=np.int64)
    state = np.array([-1, -1, 0], dtype=np.int64)
    resident = np.zeros(n_ids, dtype=np.bool_)
    pending = np.zeros(n_ids, dtype=np.int8)
    buf = np.empty(max(degree, 1), dtype=np.int64)
    tables = (succ1, len1, succ2, len2)
    n = ids.shape[0]
    record = hits_out.shape[0] > 0
    for i in range(n):
        cur = ids[i]
        in_test = i >= test_start
        if in_test:
            stats[REQUESTS] += 1
            if i > 0:
                stats[PREDICTIONS] += 1
                r = -1
                if mode != MODE_NONE:
                    r = _rank(mode, ids[i - 1], ctx_rows[i - 1], cur, next_ids, *tables)
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
        # Learn, then propose.
        nbuf = 0
        if mode == MODE_NEXT:
            for j in range(degree):
                s = next_ids[cur, j]
                if s >= 0 and not resident[s]:
                    buf[nbuf] = s
                    nbuf += 1
        elif mode in (MODE_MARKOV, MODE_MARKOV2):
            if i > 0:
                table_update(succ1, count1, len1, ids[i - 1], cur)
            if mode == MODE_MARKOV2:
                if i > 1:
                    table_update(succ2, count2, len2, ctx_rows[i - 1], cur)
                if i > 0:
                    nbuf = _collect(buf, nbuf, degree, resident, succ2, len2, ctx_rows[i])
            nbuf = _collect(buf, nbuf, degree, resident, succ1, len1, cur)
        mark = PENDING_TEST if in_test else PENDING_TRAIN
        stats[EVICTED_UNUSED] += lru_prefetch(
            prev, nxt, state, resident, pending, capacity, buf, nbuf, mark
        )
        if in_test:
            stats[ISSUED] += nbuf
    return stats
