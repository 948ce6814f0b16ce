"""Compiled S3-FIFO replay kernel.

Same hit sequence as :class:`cache_core.policies.S3FIFOPolicy`.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.replay._lists import NIL, new_links, pop_tail, push_head, unlink

_SMALL = 0
_MAIN = 1
_GHOST = 2


@njit(cache=True)
def replay_s3fifo(
    ids: NDArray[np.int64], sizes: NDArray[np.int64], capacity: int, n_objects: int
) -> NDArray[np.uint8]:
    """Replay ``ids`` through an S3-FIFO cache; return the per-request hit mask.

    Small, main and ghost FIFOs are linked lists sharing one pair of link arrays (an id is in
    at most one of them). Parameters as in :class:`cache_core.policies.S3FIFOPolicy`.

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
    # (head, tail) of the small, main and ghost FIFOs, as scalars.
    hs = ts = hm = tm = hg = tg = NIL
    where = np.full(n_objects, -1, dtype=np.int8)
    freq = np.zeros(n_objects, dtype=np.int8)
    obj_size = np.zeros(n_objects, dtype=np.int64)
    small_cap = max(1, int(capacity * 0.1))
    main_cap = capacity - small_cap
    ghost_cap = int(capacity * 0.9)
    small_used = 0
    main_used = 0
    ghost_used = 0
    has_evicted = False
    for i in range(n):
        x = ids[i]
        w = where[x]
        if w == _SMALL or w == _MAIN:  # noqa: SIM109 (plain compares compile best)
            hits[i] = 1
            if freq[x] < 3:
                freq[x] += 1
            continue
        from_ghost = False
        if w == _GHOST:
            hg, tg = unlink(link, hg, tg, x)
            ghost_used -= obj_size[x]
            where[x] = -1
            from_ghost = True
        s = sizes[i]
        if s > small_cap:
            continue
        while small_used + main_used + s > capacity:
            has_evicted = True
            if main_used > main_cap or small_used == 0:
                # 2-bit CLOCK over the main FIFO.
                while True:
                    v, hm, tm = pop_tail(link, hm, tm)
                    if freq[v] >= 1:
                        freq[v] = min(freq[v], 3) - 1
                        hm, tm = push_head(link, hm, tm, v)
                    else:
                        main_used -= obj_size[v]
                        where[v] = -1
                        break
            else:
                while small_used > 0:
                    v, hs, ts = pop_tail(link, hs, ts)
                    vs = obj_size[v]
                    small_used -= vs
                    if freq[v] >= 2:
                        freq[v] = 0
                        hm, tm = push_head(link, hm, tm, v)
                        main_used += vs
                        where[v] = _MAIN
                    else:
                        where[v] = -1
                        if vs <= ghost_cap:
                            while ghost_used + vs > ghost_cap:
                                g, hg, tg = pop_tail(link, hg, tg)
                                ghost_used -= obj_size[g]
                                where[g] = -1
                            hg, tg = push_head(link, hg, tg, v)
                            ghost_used += vs
                            where[v] = _GHOST
                        break
        if from_ghost or (not has_evicted and small_used >= small_cap):
            hm, tm = push_head(link, hm, tm, x)
            main_used += s
            where[x] = _MAIN
        else:
            hs, ts = push_head(link, hs, ts, x)
            small_used += s
            where[x] = _SMALL
        freq[x] = 0
        obj_size[x] = s
    return hits
