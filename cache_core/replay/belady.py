"""Compiled Belady (offline optimal, no bypass) replay kernel.

Every missed object is admitted; to make room the resident object whose next request lies
farthest in the future is evicted. Next uses are precomputed with numpy; the resident set is an
indexed binary max-heap keyed by next use (``O(resident)`` memory, ``O(log resident)`` per
request). An object never requested again gets the key ``len(ids) + id``: it sorts after every
real next use, and ties among such objects are broken by the larger id (any choice among them
gives the same hit count for unit sizes).

This matches libCacheSim's ``Belady`` (which also admits every object and evicts the largest
``next_access_vtime``, with "never" mapped to ``INT64_MAX``): hit counts are equal for
unit-size objects on every bundled trace.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


def next_use(ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the index of each request's next request for the same id.

    Requests never followed by another for their id get ``len(ids) + id``.

    Parameters
    ----------
    ids
        Dense object ids (non-negative).

    Returns
    -------
    numpy.ndarray
        ``int64`` array of the same length as ``ids``.
    """
    n = ids.shape[0]
    out: NDArray[np.int64] = ids.astype(np.int64) + n
    if n < 2:
        return out
    order = np.argsort(ids, kind="stable")
    same = ids[order[1:]] == ids[order[:-1]]
    out[order[:-1][same]] = order[1:][same]
    return out


@njit(cache=True, inline="always")
def _sift_up(
    heap_id: NDArray[np.int64], heap_key: NDArray[np.int64], pos: NDArray[np.int64], j: int
) -> None:
    x = heap_id[j]
    k = heap_key[j]
    while j > 0:
        parent = (j - 1) >> 1
        if heap_key[parent] >= k:
            break
        heap_id[j] = heap_id[parent]
        heap_key[j] = heap_key[parent]
        pos[heap_id[j]] = j
        j = parent
    heap_id[j] = x
    heap_key[j] = k
    pos[x] = j


@njit(cache=True, inline="always")
def _sift_down(
    heap_id: NDArray[np.int64],
    heap_key: NDArray[np.int64],
    pos: NDArray[np.int64],
    j: int,
    size: int,
) -> None:
    x = heap_id[j]
    k = heap_key[j]
    while True:
        child = 2 * j + 1
        if child >= size:
            break
        if child + 1 < size and heap_key[child + 1] > heap_key[child]:
            child += 1
        if heap_key[child] <= k:
            break
        heap_id[j] = heap_id[child]
        heap_key[j] = heap_key[child]
        pos[heap_id[j]] = j
        j = child
    heap_id[j] = x
    heap_key[j] = k
    pos[x] = j


@njit(cache=True)
def belady_kernel(
    ids: NDArray[np.int64],
    sizes: NDArray[np.int64],
    capacity: int,
    n_objects: int,
    next_uses: NDArray[np.int64],
) -> NDArray[np.uint8]:
    """Replay ``ids`` through Belady's policy given precomputed :func:`next_use`.

    Parameters
    ----------
    ids
        Dense object ids in ``0 .. n_objects - 1``.
    sizes
        Per-request object sizes in capacity units.
    capacity
        Cache capacity in units.
    n_objects
        One more than the largest id.
    next_uses
        ``next_use(ids)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, 1 where the request hit.
    """
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.uint8)
    slots = max(n_objects, 1)
    heap_id = np.empty(slots, dtype=np.int64)
    heap_key = np.empty(slots, dtype=np.int64)
    pos = np.full(n_objects, -1, dtype=np.int64)
    obj_size = np.zeros(n_objects, dtype=np.int64)
    size = 0
    used = 0
    for i in range(n):
        x = ids[i]
        k = next_uses[i]
        j = pos[x]
        if j >= 0:
            hits[i] = 1
            # The old key was i, the smallest of all residents; the new one is larger.
            heap_key[j] = k
            _sift_up(heap_id, heap_key, pos, j)
            continue
        s = sizes[i]
        if s > capacity:
            continue
        while used + s > capacity:
            v = heap_id[0]
            pos[v] = -1
            used -= obj_size[v]
            size -= 1
            if size > 0:
                heap_id[0] = heap_id[size]
                heap_key[0] = heap_key[size]
                _sift_down(heap_id, heap_key, pos, 0, size)
        heap_id[size] = x
        heap_key[size] = k
        size += 1
        _sift_up(heap_id, heap_key, pos, size - 1)
        obj_size[x] = s
        used += s
    return hits


def replay_belady(
    ids: NDArray[np.int64], sizes: NDArray[np.int64], capacity: int, n_objects: int
) -> NDArray[np.uint8]:
    """Replay ``ids`` through Belady's policy; return the per-request hit mask.

    Convenience wrapper: computes :func:`next_use` and runs :func:`belady_kernel`.
    """
    result: NDArray[np.uint8] = belady_kernel(ids, sizes, capacity, n_objects, next_use(ids))
    return result
