"""Compiled successor rows: the array form of :class:`~.successor_table.SuccessorTable`.

A table is a pair of ``int32`` matrices ``succ[rows, width]`` and ``count[rows, width]`` plus
``length[rows]``; row ``r`` holds ``length[r]`` entries sorted by count, descending, ties most
recently updated first. The update rule (Space-Saving) is documented in
:mod:`cache_core.prefetch.successor_table`; both must stay identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


def new_table(
    rows: int, width: int
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]:
    """Allocate an empty table: ``(succ, count, length)``."""
    succ = np.full((rows, width), -1, dtype=np.int32)
    count = np.zeros((rows, width), dtype=np.int32)
    length = np.zeros(rows, dtype=np.int32)
    return succ, count, length


@njit(cache=True)
def table_update(
    succ: NDArray[np.int32],
    count: NDArray[np.int32],
    length: NDArray[np.int32],
    row: int,
    successor: int,
) -> None:  # pragma: no cover - compiled
    """Record one transition ``row → successor``."""
    width = succ.shape[1]
    n = length[row]
    j = -1
    for i in range(n):
        if succ[row, i] == successor:
            j = i
            break
    if j >= 0:
        count[row, j] += 1
    elif n < width:
        j = n
        succ[row, j] = successor
        count[row, j] = 1
        length[row] = n + 1
    else:
        j = width - 1
        succ[row, j] = successor
        count[row, j] += 1
    while j > 0 and count[row, j - 1] <= count[row, j]:
        s = succ[row, j - 1]
        c = count[row, j - 1]
        succ[row, j - 1] = succ[row, j]
        count[row, j - 1] = count[row, j]
        succ[row, j] = s
        count[row, j] = c
        j -= 1


@njit(cache=True)
def table_position(
    succ: NDArray[np.int32], length: NDArray[np.int32], row: int, successor: int
) -> int:  # pragma: no cover - compiled
    """Return the rank of ``successor`` in ``row`` (0 = best), or ``-1`` if absent."""
    for i in range(length[row]):
        if succ[row, i] == successor:
            return i
    return -1
