"""Compiled LRU list over dense object ids, with pending-prefetch accounting.

The list is doubly linked through two ``int64`` arrays indexed by id (``-1`` = none); ``state``
holds ``[head (MRU), tail (LRU), size]``. A resident flag array answers membership. ``pending``
marks prefetched objects not yet hit: ``0`` none, ``1`` issued before the test segment, ``2``
issued in it (only those are counted as evicted unused).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

HEAD = 0
TAIL = 1
SIZE = 2

#: ``pending`` values.
NOT_PENDING = 0
PENDING_TRAIN = 1
PENDING_TEST = 2


@njit(cache=True)
def lru_unlink(
    prev: NDArray[np.int64], nxt: NDArray[np.int64], state: NDArray[np.int64], x: int
) -> None:  # pragma: no cover - compiled
    """Remove ``x`` from the list."""
    p = prev[x]
    q = nxt[x]
    if p != -1:
        nxt[p] = q
    else:
        state[HEAD] = q
    if q != -1:
        prev[q] = p
    else:
        state[TAIL] = p
    state[SIZE] -= 1


@njit(cache=True)
def lru_push_front(
    prev: NDArray[np.int64], nxt: NDArray[np.int64], state: NDArray[np.int64], x: int
) -> None:  # pragma: no cover - compiled
    """Insert ``x`` at the most-recently-used end."""
    h = state[HEAD]
    prev[x] = -1
    nxt[x] = h
    if h != -1:
        prev[h] = x
    else:
        state[TAIL] = x
    state[HEAD] = x
    state[SIZE] += 1


@njit(cache=True)
def lru_admit(
    prev: NDArray[np.int64],
    nxt: NDArray[np.int64],
    state: NDArray[np.int64],
    resident: NDArray[np.bool_],
    pending: NDArray[np.int8],
    capacity: int,
    x: int,
) -> int:  # pragma: no cover - compiled
    """Insert the non-resident ``x`` at the MRU end, evicting from the LRU end first.

    Returns
    -------
    int
        How many evicted objects were test-segment prefetches never hit.
    """
    wasted = 0
    while state[SIZE] + 1 > capacity:
        victim = state[TAIL]
        lru_unlink(prev, nxt, state, victim)
        resident[victim] = False
        if pending[victim] == PENDING_TEST:
            wasted += 1
        pending[victim] = NOT_PENDING
    lru_push_front(prev, nxt, state, x)
    resident[x] = True
    return wasted


@njit(cache=True)
def lru_demand(
    prev: NDArray[np.int64],
    nxt: NDArray[np.int64],
    state: NDArray[np.int64],
    resident: NDArray[np.bool_],
    pending: NDArray[np.int8],
    capacity: int,
    x: int,
) -> tuple[bool, bool, int]:  # pragma: no cover - compiled
    """Serve a demand request for ``x``: a hit moves it to the MRU end, a miss admits it.

    Returns
    -------
    tuple
        ``(hit, used, wasted)``: whether it was a hit, whether that hit used a pending
        test-segment prefetch (counted once), and how many test-segment prefetches a miss
        evicted unused.
    """
    if resident[x]:
        used = pending[x] == PENDING_TEST
        pending[x] = NOT_PENDING
        lru_unlink(prev, nxt, state, x)
        lru_push_front(prev, nxt, state, x)
        return True, used, 0
    return False, False, lru_admit(prev, nxt, state, resident, pending, capacity, x)


@njit(cache=True)
def lru_prefetch(
    prev: NDArray[np.int64],
    nxt: NDArray[np.int64],
    state: NDArray[np.int64],
    resident: NDArray[np.bool_],
    pending: NDArray[np.int8],
    capacity: int,
    buf: NDArray[np.int64],
    nbuf: int,
    mark: int,
) -> int:  # pragma: no cover - compiled
    """Insert the non-resident ``buf[:nbuf]`` as prefetches marked ``mark``, in order.

    Returns
    -------
    int
        How many test-segment prefetches the insertions evicted unused.
    """
    wasted = 0
    for j in range(nbuf):
        s = buf[j]
        wasted += lru_admit(prev, nxt, state, resident, pending, capacity, s)
        pending[s] = mark
    return wasted
