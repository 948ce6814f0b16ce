"""Bounded per-context successor counts, kept sorted (the Markov prefetchers' memory).

Each context (a key, or a pair of keys) owns a *row* of at most ``width`` ``(successor, count)``
entries. The bound is per row: memory is ``O(width)`` per context ever seen, so the number of
contexts tracked grows with the distinct contexts of the stream; only the row width is capped.

Update rule (Space-Saving, Metwally et al., ICDT 2005, applied per row):

* a successor already in the row gets ``count + 1``;
* a new successor is appended with count 1 while the row has room;
* in a full row, a new successor replaces the *last* entry (the least counted; among equal counts
  the least recently updated) and takes over its count plus one. A successor whose true share of
  the context's transitions exceeds ``1 / width`` is therefore never lost.

Rows stay sorted by count, descending; among equal counts the most recently updated entry comes
first (an updated entry moves ahead of every entry whose count is not larger). That order is the
ranking the prefetchers use, so ties break deterministically, most recent first.

The compiled kernels (:mod:`cache_core.prefetch.table_kernel`) implement the same rule on arrays.
"""

from __future__ import annotations

from collections.abc import Hashable

from cache_core.prefetch.errors import InvalidPrefetchConfigError


class SuccessorTable:
    """Successor counts per context, at most ``width`` successors per context.

    Parameters
    ----------
    width
        Maximum number of successors kept per context; a positive integer.
    """

    def __init__(self, width: int) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise InvalidPrefetchConfigError(f"width must be a positive integer, got {width!r}")
        self._width = width
        self._keys: dict[Hashable, list[Hashable]] = {}
        self._counts: dict[Hashable, list[int]] = {}

    @property
    def width(self) -> int:
        """Maximum number of successors kept per context."""
        return self._width

    def __len__(self) -> int:
        """Return the number of contexts with a row."""
        return len(self._keys)

    def update(self, context: Hashable, successor: Hashable) -> None:
        """Record one transition ``context → successor``."""
        keys = self._keys.get(context)
        if keys is None:
            keys = self._keys[context] = []
            self._counts[context] = []
        counts = self._counts[context]
        try:
            j = keys.index(successor)
            counts[j] += 1
        except ValueError:
            if len(keys) < self._width:
                keys.append(successor)
                counts.append(1)
                j = len(keys) - 1
            else:
                j = self._width - 1
                keys[j] = successor
                counts[j] += 1
        while j > 0 and counts[j - 1] <= counts[j]:
            keys[j - 1], keys[j] = keys[j], keys[j - 1]
            counts[j - 1], counts[j] = counts[j], counts[j - 1]
            j -= 1

    def successors(self, context: Hashable) -> tuple[Hashable, ...]:
        """Return the successors of ``context``, best first (empty if never seen)."""
        return tuple(self._keys.get(context, ()))

    def counts(self, context: Hashable) -> tuple[int, ...]:
        """Return the counts matching :meth:`successors`."""
        return tuple(self._counts.get(context, ()))
