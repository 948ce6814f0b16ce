"""Per-request hit indicator of an LRU cache, optionally with a Markov prefetcher.

A drift detector that watches the running model (ADWIN on the hit stream) needs to know, for every
request, whether the cache hit. :func:`lru_hit_stream` replays dense ids through the compiled LRU
list of :mod:`cache_core.prefetch.lru_kernel` (the same helpers the prefetch replay uses) and
returns that indicator. With ``prefetcher="markov"`` or ``"markov2"`` the successor tables of
:mod:`cache_core.prefetch.table_kernel` learn online and propose up to ``degree`` prefetches per
request, exactly as in :func:`cache_core.prefetch.compiled_counts`; without a prefetcher the hits
are those of :func:`cache_core.replay.replay` with ``"lru"``.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from cache_core.errors import InvalidCapacityError
from cache_core.prefetch.encoding import pair_contexts
from cache_core.prefetch.errors import InvalidPrefetchConfigError, UnknownPrefetcherError
from cache_core.prefetch.kernels import _collect
from cache_core.prefetch.lru_kernel import PENDING_TEST, lru_demand, lru_prefetch
from cache_core.prefetch.markov import DEFAULT_WIDTH
from cache_core.prefetch.markov2 import DEFAULT_CONTEXT_WIDTH
from cache_core.prefetch.table_kernel import new_table, table_update

__all__ = ["HIT_STREAM_PREFETCHERS", "lru_hit_stream"]

#: Prefetchers :func:`lru_hit_stream` supports (they need nothing but the dense ids).
HIT_STREAM_PREFETCHERS: tuple[str, ...] = ("none", "markov", "markov2")

_MODES = {"none": 0, "markov": 1, "markov2": 2}


@njit(cache=True)
def _hit_stream_kernel(
    ids: NDArray[np.int64],
    n_ids: int,
    capacity: int,
    degree: int,
    mode: int,
    ctx_rows: NDArray[np.int64],
    succ1: NDArray[np.int32],
    count1: NDArray[np.int32],
    len1: NDArray[np.int32],
    succ2: NDArray[np.int32],
    count2: NDArray[np.int32],
    len2: NDArray[np.int32],
) -> NDArray[np.uint8]:  # pragma: no cover - compiled
    """Replay ``ids`` through LRU (``mode`` 0), or LRU with first/second-order Markov (1/2)."""
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.uint8)
    prev = np.full(n_ids, -1, dtype=np.int64)
    nxt = np.full(n_ids, -1, dtype=np.int64)
    state = np.array([-1, -1, 0], dtype=np.int64)
    resident = np.zeros(n_ids, dtype=np.bool_)
    pending = np.zeros(n_ids, dtype=np.int8)
    buf = np.empty(max(degree, 1), dtype=np.int64)
    for i in range(n):
        cur = ids[i]
        hit, _, _ = lru_demand(prev, nxt, state, resident, pending, capacity, cur)
        if hit:
            hits[i] = 1
        if mode == 0:
            continue
        if i > 0:
            table_update(succ1, count1, len1, ids[i - 1], cur)
        nbuf = 0
        if mode == 2:
            if i > 1:
                table_update(succ2, count2, len2, ctx_rows[i - 1], cur)
            if i > 0:
                nbuf = _collect(buf, nbuf, degree, resident, succ2, len2, ctx_rows[i])
        nbuf = _collect(buf, nbuf, degree, resident, succ1, len1, cur)
        lru_prefetch(prev, nxt, state, resident, pending, capacity, buf, nbuf, PENDING_TEST)
    return hits


def lru_hit_stream(
    ids: ArrayLike,
    capacity: int,
    *,
    prefetcher: str = "none",
    degree: int = 2,
) -> NDArray[np.uint8]:
    """Return the per-request hit indicator of an LRU cache of ``capacity`` objects.

    Parameters
    ----------
    ids
        Dense object ids (``0 .. n - 1``, e.g. :attr:`cache_core.Trace.dense_ids`), in request
        order; the cache starts empty.
    capacity
        Capacity in objects (see :func:`cache_core.replay.resolve_capacity`).
    prefetcher
        ``"none"`` (plain LRU), ``"markov"`` or ``"markov2"`` (online successor tables proposing
        up to ``degree`` uncached keys after each request; prefetched objects compete for the
        same capacity).
    degree
        Prefetch budget per request (ignored without a prefetcher).

    Returns
    -------
    numpy.ndarray
        ``uint8[n]``, 1 where the request hit (a prefetched object counts as a hit when
        requested while still cached).

    Raises
    ------
    InvalidCapacityError
        If ``capacity`` is not a positive integer.
    UnknownPrefetcherError
        If ``prefetcher`` is not in :data:`HIT_STREAM_PREFETCHERS`.
    InvalidPrefetchConfigError
        If ``degree`` is not a positive integer.
    ValueError
        If ``ids`` is not one-dimensional or holds negative ids.

    Examples
    --------
    >>> lru_hit_stream([0, 1, 0, 2, 1], 2).tolist()
    [0, 0, 1, 0, 0]
    """
    if isinstance(capacity, bool) or not isinstance(capacity, Integral) or capacity <= 0:
        raise InvalidCapacityError(f"capacity must be a positive integer, got {capacity!r}")
    name = prefetcher.strip().lower() if isinstance(prefetcher, str) else ""
    if name not in _MODES:
        raise UnknownPrefetcherError(
            f"unknown prefetcher {prefetcher!r} for the hit stream; valid: "
            f"{', '.join(HIT_STREAM_PREFETCHERS)}"
        )
    if isinstance(degree, bool) or not isinstance(degree, Integral) or degree <= 0:
        raise InvalidPrefetchConfigError(f"degree must be a positive integer, got {degree!r}")
    arr = np.ascontiguousarray(ids, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] == 0:
        return np.zeros(0, dtype=np.uint8)
    if int(arr.min()) < 0:
        raise ValueError("ids must be non-negative dense ids")
    n_ids = int(arr.max()) + 1
    mode = _MODES[name]
    ctx_rows = np.full(1, -1, dtype=np.int64)
    first = second = new_table(1, 1)
    if mode >= 1:
        first = new_table(n_ids, DEFAULT_WIDTH)
    if mode == 2:
        ctx_rows, n_ctx = pair_contexts(arr, n_ids)
        second = new_table(max(n_ctx, 1), DEFAULT_CONTEXT_WIDTH)
    hits: NDArray[np.uint8] = _hit_stream_kernel(
        arr, n_ids, int(capacity), int(degree), mode, ctx_rows, *first, *second
    )
    return hits
