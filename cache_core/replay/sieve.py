"""Compiled SIEVE replay kernel (same hit sequence as :class:`cache_core.policies.SievePolicy`)."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.replay._lists import NIL, new_links, newer_of, push_head, unlink


@njit(cache=True)
def replay_sieve(
    ids: NDArray[np.int64], sizes: NDArray[np.int64], capacity: int, n_objects: int
) -> NDArray[np.uint8]:
    """Replay ``ids`` through a SIEVE cache; return the per-request hit mask.

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
    link = new_links(n_objects)
    resident = np.zeros(n_objects, dtype=np.uint8)
    visited = np.zeros(n_objects, dtype=np.uint8)
    obj_size = np.zeros(n_objects, dtype=np.int64)
    head = NIL
    tail = NIL
    hand = NIL
    used = 0
    for i in range(n):
        x = ids[i]
        if resident[x]:
            hits[i] = 1
            visited[x] = 1
            continue
        s = sizes[i]
        if s > capacity:
            continue
        while used + s > capacity:
            v = hand if hand != NIL else tail
            while visited[v]:
                visited[v] = 0
                v = newer_of(link, v)
                if v == NIL:
                    v = tail
            hand = newer_of(link, v)
            head, tail = unlink(link, head, tail, v)
            resident[v] = 0
            used -= obj_size[v]
        head, tail = push_head(link, head, tail, x)
        resident[x] = 1
        visited[x] = 0
        obj_size[x] = s
        used += s
    return hits
