"""Doubly-linked lists stored in one index array, for the compiled replay kernels.

``link`` is an ``int32`` array of length ``2 * n_objects``: ``link[2 * x]`` is the *newer*
neighbour of id ``x`` and ``link[2 * x + 1]`` its *older* neighbour (``-1``: none). Several
lists may share one ``link`` array as long as every id is in at most one list at a time. A list
is identified by its ``head`` (newest) and ``tail`` (oldest) ids, which the kernels keep in
local scalars: the helpers take them and return the updated pair. (Keeping heads and tails in
small arrays instead makes every link store a potential alias of them and costs ~5x in speed.)

Numba's on-disk cache of a kernel is invalidated when the kernel's own module changes, not when
these inlined helpers do; after editing this file, delete ``cache_core/replay/__pycache__``.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

NIL = -1


@njit(cache=True, inline="always")
def new_links(n_objects: int) -> NDArray[np.int32]:
    """Return an all-``NIL`` link array for ids ``0 .. n_objects - 1``."""
    return np.full(2 * max(n_objects, 1), NIL, dtype=np.int32)


@njit(cache=True, inline="always")
def push_head(link: NDArray[np.int32], head: int, tail: int, x: int) -> tuple[int, int]:
    """Insert ``x`` as the newest element; return the new ``(head, tail)``."""
    link[2 * x] = NIL
    link[2 * x + 1] = head
    if head != NIL:
        link[2 * head] = x
    else:
        tail = x
    return x, tail


@njit(cache=True, inline="always")
def unlink(link: NDArray[np.int32], head: int, tail: int, x: int) -> tuple[int, int]:
    """Remove ``x`` from its list; return the new ``(head, tail)``."""
    nw = int(link[2 * x])
    od = int(link[2 * x + 1])
    if nw != NIL:
        link[2 * nw + 1] = od
    else:
        head = od
    if od != NIL:
        link[2 * od] = nw
    else:
        tail = nw
    return head, tail


@njit(cache=True, inline="always")
def pop_tail(link: NDArray[np.int32], head: int, tail: int) -> tuple[int, int, int]:
    """Remove the oldest element of a non-empty list; return ``(it, head, tail)``."""
    x = tail
    nw = link[2 * x]
    if nw != NIL:
        link[2 * nw + 1] = NIL
    else:
        head = NIL
    return x, head, int(nw)


@njit(cache=True, inline="always")
def newer_of(link: NDArray[np.int32], x: int) -> int:
    """Return the newer neighbour of ``x`` (``NIL`` at the head)."""
    return int(link[2 * x])
