"""Bounded per-key statistics for the drift features: last access and decayed request count.

Keys are arbitrary 64-bit integers, so the statistics live in a direct-mapped table of
``2 ** bits`` slots indexed by a multiplicative (Fibonacci) hash of the key. A slot remembers the
key that last used it; a key whose slot was taken by another key since its last access is treated
as new. Memory is fixed (16 bytes a slot, 20 with counts) whatever the number of keys, and the
kernels cost a few nanoseconds per request.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
def _slot(key: np.uint64, shift: np.uint64) -> int:  # pragma: no cover - compiled
    return int((key * _GOLDEN) >> shift)


@njit(cache=True)
def _reuse_bins(
    keys: NDArray[np.uint64],
    start: int,
    shift: np.uint64,
    tags: NDArray[np.uint64],
    last: NDArray[np.int64],
    cap: int,
    bins_per_octave: int,
    out: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """Bin of ``min(reuse time, cap)`` for each request; the cap (or a new key) is the top bin."""
    top = round(bins_per_octave * math.log2(cap))
    for i in range(keys.shape[0]):
        key = keys[i]
        s = _slot(key, shift)
        index = start + i
        gap = index - last[s] if last[s] >= 0 and tags[s] == key else cap
        if gap >= cap:
            out[i] = top
        else:
            b = math.floor(bins_per_octave * math.log2(gap))
            out[i] = min(b, top - 1)
        tags[s] = key
        last[s] = index


@njit(cache=True)
def _popularity_classes(
    keys: NDArray[np.uint64],
    start: int,
    shift: np.uint64,
    tags: NDArray[np.uint64],
    last: NDArray[np.int64],
    counts: NDArray[np.float32],
    decay: float,
    n_classes: int,
    delayed: NDArray[np.uint64],
    out: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """Popularity class of each request's key in the traffic up to ``len(delayed)`` requests ago.

    ``delayed`` is a ring of the last ``lag = len(delayed)`` keys (request ``j`` at ``j % lag``);
    the access of request ``i - lag`` is counted just before request ``i`` is classed. Class 0:
    a key with no access in that history (or forgotten); class ``j >= 1``: a share of the decayed
    request count in ``[2 ** -j, 2 ** (1 - j))``, the last class taking every smaller share.
    """
    lag = delayed.shape[0]
    step = math.exp(-decay)
    for i in range(keys.shape[0]):
        index = start + i
        seen = index - lag  # the newest request counted in the history
        if seen >= 0:
            old = delayed[index % lag]
            s = _slot(old, shift)
            c = 0.0
            if last[s] >= 0 and tags[s] == old:
                c = counts[s] * math.exp(-decay * (seen - last[s]))
            tags[s] = old
            last[s] = seen
            counts[s] = c + 1.0
        key = keys[i]
        out[i] = 0
        if seen >= 0:
            s = _slot(key, shift)
            if last[s] >= 0 and tags[s] == key:
                c = counts[s] * math.exp(-decay * (seen - last[s]))
                total = (1.0 - math.exp(-decay * (seen + 1))) / (1.0 - step)
                share = min(c / total, 1.0)
                out[i] = min(1 + math.floor(-math.log2(share)), n_classes - 1)
        delayed[index % lag] = key


class KeyTable:
    """Direct-mapped per-key statistics (last access index, optionally a decayed count).

    Parameters
    ----------
    bits
        The table has ``2 ** bits`` slots.
    with_counts
        Also keep decayed request counts (needed by :meth:`popularity_classes`).

    Examples
    --------
    >>> table = KeyTable(8)
    >>> table.reuse_bins(np.array([5, 6, 5], dtype=np.uint64), 0, cap=16, bins_per_octave=1)
    array([4, 4, 1])
    """

    def __init__(self, bits: int, *, with_counts: bool = False) -> None:
        self._bits = bits
        self._shift = np.uint64(64 - bits)
        size = 1 << bits
        self._tags = np.zeros(size, dtype=np.uint64)
        self._last = np.full(size, -1, dtype=np.int64)
        self._counts = np.zeros(size if with_counts else 1, dtype=np.float32)

    @property
    def slots(self) -> int:
        """Number of slots."""
        return 1 << self._bits

    def clear(self) -> None:
        """Forget every key."""
        self._tags.fill(0)
        self._last.fill(-1)
        self._counts.fill(0.0)

    def reuse_bins(
        self, keys: NDArray[np.uint64], start: int, *, cap: int, bins_per_octave: int
    ) -> NDArray[np.int64]:
        """Record accesses and return the binned reuse time of each.

        Parameters
        ----------
        keys
            Keys in request order.
        start
            Stream index of ``keys[0]``.
        cap
            Reuse times at or above ``cap`` (and new keys) fall in the top bin.
        bins_per_octave
            Bins per doubling of the reuse time.

        Returns
        -------
        numpy.ndarray
            ``int64`` bins in ``0 .. round(bins_per_octave * log2(cap))``.
        """
        out = np.empty(keys.shape[0], dtype=np.int64)
        _reuse_bins(keys, start, self._shift, self._tags, self._last, cap, bins_per_octave, out)
        return out

    def popularity_classes(
        self,
        keys: NDArray[np.uint64],
        start: int,
        *,
        half_life: float,
        n_classes: int,
        delayed: NDArray[np.uint64],
    ) -> NDArray[np.int64]:
        """Return the popularity class of each key in the history before the last ``lag`` requests.

        The class says which share of the traffic up to ``lag = len(delayed)`` requests before the
        request went to its key: 0 for a key not seen there (or forgotten), ``j`` for a share in
        ``[2 ** -j, 2 ** (1 - j))`` of the request count decayed with ``half_life``, the last class
        taking anything smaller. The lag keeps a window's own requests out of the popularity its
        requests are judged by, so a workload of new keys stays in class 0 for a whole window;
        shares, unlike raw counts, do not grow while the table fills.

        Parameters
        ----------
        keys
            Keys in request order.
        start
            Stream index of ``keys[0]`` (the stream must be fed without gaps).
        half_life
            Requests after which a count is halved.
        n_classes
            Number of classes.
        delayed
            Ring of the last ``lag`` keys, updated in place (all requests before ``start`` must
            have gone through the same ring).

        Returns
        -------
        numpy.ndarray
            ``int64`` classes in ``0 .. n_classes - 1``.

        Raises
        ------
        ValueError
            If the table was built without counts, or ``delayed`` is empty.
        """
        if self._counts.shape[0] != self._tags.shape[0]:
            raise ValueError("this KeyTable keeps no counts (with_counts=False)")
        if delayed.shape[0] == 0:
            raise ValueError("the delay ring must hold at least one key")
        out = np.empty(keys.shape[0], dtype=np.int64)
        _popularity_classes(
            keys,
            start,
            self._shift,
            self._tags,
            self._last,
            self._counts,
            math.log(2.0) / half_life,
            n_classes,
            delayed,
            out,
        )
        return out
