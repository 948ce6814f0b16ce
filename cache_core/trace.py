"""In-memory representation of a decoded access trace."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class TraceChunk:
    """A block of consecutive decoded requests.

    Attributes
    ----------
    keys
        Object keys, ``uint64``.
    timestamps
        Request timestamps (``float64``; the unit is the trace's own) or ``None`` when the
        format has none.
    sizes
        Object sizes in bytes (``uint32``) or ``None`` when the format has none.
    """

    keys: NDArray[np.uint64]
    timestamps: NDArray[np.float64] | None = None
    sizes: NDArray[np.uint32] | None = None

    def __len__(self) -> int:
        return int(self.keys.shape[0])


@dataclass(frozen=True)
class Trace:
    """A whole decoded trace: parallel arrays of keys and optional timestamps and sizes.

    Attributes
    ----------
    name
        Human-readable name (usually the path relative to the trace root).
    format
        The format name it was decoded with (one of :data:`cache_core.TRACE_FORMATS`,
        or ``"synthetic"``).
    keys, timestamps, sizes
        As in :class:`TraceChunk`.
    """

    name: str
    format: str
    keys: NDArray[np.uint64]
    timestamps: NDArray[np.float64] | None = None
    sizes: NDArray[np.uint32] | None = None

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    @cached_property
    def dense_ids(self) -> NDArray[np.int64]:
        """Keys remapped to ``0 .. unique_objects - 1`` in order of first appearance.

        Computed once and cached; the compiled replay kernels index arrays by these ids.
        """
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        uniq, first, inverse = np.unique(self.keys, return_index=True, return_inverse=True)
        # Renumber so that ids follow first appearance (stable, human-friendly, and
        # independent of key magnitudes).
        order = np.argsort(first, kind="stable")
        rank = np.empty(uniq.shape[0], dtype=np.int64)
        rank[order] = np.arange(uniq.shape[0], dtype=np.int64)
        return rank[inverse.reshape(-1)]

    @property
    def unique_objects(self) -> int:
        """Number of distinct keys in the trace."""
        if len(self) == 0:
            return 0
        return int(self.dense_ids.max()) + 1

    def head(self, n: int) -> Trace:
        """Return the first ``n`` requests as a new trace."""
        return Trace(
            name=self.name,
            format=self.format,
            keys=self.keys[:n],
            timestamps=None if self.timestamps is None else self.timestamps[:n],
            sizes=None if self.sizes is None else self.sizes[:n],
        )
