"""Per-request hit indicator of an LRU cache, optionally with a Markov prefetcher.

A drift detector that watches the running model (ADWIN on the hit stream) needs to know, for every
request, whether the cache hit. :func:`lru_hit_stream` replays dense ids through the compiled LRU
list of :mod:`cache_core.prefetch.lru_kernel` (the same helpers the prefetch replay uses) and
returns that indicator: it is the compiled prefetch replay of
:func:`cache_core.prefetch.compiled_counts` with its per-request hit output. With
``prefetcher="markov"`` or ``"markov2"`` the successor tables learn online and propose up to
``degree`` prefetches per request; without a prefetcher the hits are those of
:func:`cache_core.replay.replay` with ``"lru"``.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cache_core.errors import InvalidCapacityError
from cache_core.prefetch.compiled import compiled_counts
from cache_core.prefetch.errors import InvalidPrefetchConfigError, UnknownPrefetcherError
from cache_core.trace import Trace

__all__ = ["HIT_STREAM_PREFETCHERS", "lru_hit_stream"]

#: Prefetchers :func:`lru_hit_stream` supports (they need nothing but the dense ids).
HIT_STREAM_PREFETCHERS: tuple[str, ...] = ("none", "markov", "markov2")


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
    if name not in HIT_STREAM_PREFETCHERS:
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
    trace = Trace(name="hit-stream", format="dense-ids", keys=arr.astype(np.uint64))
    hits = np.zeros(arr.shape[0], dtype=np.uint8)
    compiled_counts(trace, int(capacity), name, int(degree), 0, hits_out=hits)
    return hits
