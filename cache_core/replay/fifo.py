"""Compiled FIFO replay kernel (same hit sequence as :class:`cache_core.policies.FIFOPolicy`)."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True)
def replay_fifo(
    ids: NDArray[np.int64], sizes: NDArray[np.int64], capacity: int, n_objects: int
) -> NDArray[np.uint8]:
    """Replay ``ids`` through a FIFO cache; return the per-request hit mask.

    The queue is a ring buffer of ids (at most ``n_objects`` are resident at once).

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

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, 1 where the request hit.
    """
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.uint8)
    ring_len = max(n_objects, 1)
    ring = np.empty(ring_len, dtype=np.int64)
    first = 0  # index of the oldest entry
    count = 0
    resident = np.zeros(n_objects, dtype=np.uint8)
    obj_size = np.zeros(n_objects, dtype=np.int64)
    used = 0
    for i in range(n):
        x = ids[i]
        if resident[x]:
            hits[i] = 1
            continue
        s = sizes[i]
        if s > capacity:
            continue
        while used + s > capacity:
            v = ring[first]
            first += 1
            if first == ring_len:
                first = 0
            count -= 1
            resident[v] = 0
            used -= obj_size[v]
        slot = first + count
        if slot >= ring_len:
            slot -= ring_len
        ring[slot] = x
        count += 1
        resident[x] = 1
        obj_size[x] = s
        used += s
    return hits
