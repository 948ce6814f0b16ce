"""Numpy preparation of a trace for the compiled prefetch replay (no learning happens here).

Both functions only *name* things — ids for keys a next-key prefetcher can ask for, and row
numbers for pair contexts — so they use no information from the future: what a prefetcher learns
comes from the replay itself.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cache_core.trace import Trace


def next_key_ids(trace: Trace, width: int) -> tuple[NDArray[np.int64], int]:
    """Map each dense id to the dense ids of ``key + 1 .. key + width`` in the original key space.

    Keys the trace never requests get fresh ids from ``trace.unique_objects`` on (one per distinct
    key), so prefetching them occupies the cache and is wasted, as it would be on a real node.
    Keys past ``2**64 - 1`` are treated as further distinct never-requested keys.

    Parameters
    ----------
    trace
        The trace; its keys are read as unsigned integers.
    width
        Number of successors per key.

    Returns
    -------
    tuple
        ``(table, n_ids)``: an ``int64`` array of shape ``(unique_objects, width)`` with
        ``table[x, j]`` the id of ``key(x) + j + 1``, and the size of the id space.
    """
    ids = trace.dense_ids
    n_unique = trace.unique_objects
    key_of = np.empty(n_unique, dtype=np.uint64)
    key_of[ids] = trace.keys
    order = np.argsort(key_of, kind="stable")
    sorted_keys = key_of[order]
    steps = np.arange(1, width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        wanted = key_of[:, None] + steps[None, :]
    wrapped = wanted < key_of[:, None]
    pos = np.minimum(np.searchsorted(sorted_keys, wanted), max(n_unique - 1, 0))
    found = (~wrapped) & (sorted_keys[pos] == wanted) if n_unique else wrapped
    table = np.where(found, order[pos], -1).astype(np.int64)
    n_ids = n_unique
    for group in (~found & ~wrapped, wrapped):
        fresh, inverse = np.unique(wanted[group], return_inverse=True)
        table[group] = n_ids + inverse.reshape(-1)
        n_ids += int(fresh.shape[0])
    return table, n_ids


def pair_contexts(ids: NDArray[np.int64], n_unique: int) -> tuple[NDArray[np.int64], int]:
    """Assign a row number to each distinct pair of consecutive ids.

    Parameters
    ----------
    ids
        Dense request ids.
    n_unique
        Size of their id space.

    Returns
    -------
    tuple
        ``(rows, n_rows)``: ``rows[i]`` numbers the pair ``(ids[i - 1], ids[i])`` (``-1`` at
        ``i = 0``), and ``n_rows`` is the number of distinct pairs.
    """
    return _number_runs(ids[:-1], ids, n_unique)


def triple_contexts(
    pair_rows: NDArray[np.int64], ids: NDArray[np.int64], n_unique: int
) -> tuple[NDArray[np.int64], int]:
    """Assign a row number to each distinct run of three consecutive ids.

    Parameters
    ----------
    pair_rows
        :func:`pair_contexts` rows of ``ids``.
    ids
        Dense request ids.
    n_unique
        Size of the id space of ``ids``.

    Returns
    -------
    tuple
        ``(rows, n_rows)``: ``rows[i]`` numbers ``(ids[i - 2], ids[i - 1], ids[i])`` (``-1`` for
        ``i < 2``), and ``n_rows`` is the number of distinct triples.
    """
    # A triple is the pair (ids[i - 2], ids[i - 1]), already numbered, followed by ids[i].
    return _number_runs(pair_rows[1:-1], ids, n_unique)


def _number_runs(
    prefix: NDArray[np.int64], ids: NDArray[np.int64], n_unique: int
) -> tuple[NDArray[np.int64], int]:
    """Give each distinct ``(prefix[j], ids[i])``, ``i = len(ids) - len(prefix) + j``, a row.

    ``prefix`` names what precedes each of the last ``len(prefix)`` requests; the first
    requests, which have no such run, get ``-1``.
    """
    rows = np.full(ids.shape[0], -1, dtype=np.int64)
    if prefix.shape[0] < 1:
        return rows, 0
    start = ids.shape[0] - prefix.shape[0]
    runs = prefix * np.int64(n_unique) + ids[start:]
    distinct, inverse = np.unique(runs, return_inverse=True)
    rows[start:] = inverse.reshape(-1)
    return rows, int(distinct.shape[0])
