"""First-order Markov prefetching: the most frequent successors of the current key."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import ClassVar

from cache_core.prefetch.base import Prefetcher
from cache_core.prefetch.successor_table import SuccessorTable

#: Default number of successors kept per key (covers a top-10 ranked list).
DEFAULT_WIDTH = 16

_NOTHING: object = object()


class MarkovPrefetcher(Prefetcher):
    """Learn ``previous key → key`` transition counts online; propose the most frequent.

    After a request for ``key`` it proposes the successors of ``key`` that are not cached, in
    decreasing count (ties: most recently updated first), walking down the whole row as far as
    needed to fill the budget.

    Parameters
    ----------
    width
        Successors kept per key (the row width of the
        :class:`~cache_core.prefetch.successor_table.SuccessorTable`, Space-Saving replacement).
        Only the width is bounded: memory is ``O(width)`` per distinct key seen.
    """

    name: ClassVar[str] = "markov"

    def __init__(self, width: int = DEFAULT_WIDTH) -> None:
        self._table = SuccessorTable(width)
        self._last: object = _NOTHING

    @property
    def width(self) -> int:
        """Successors kept per key."""
        return self._table.width

    @property
    def table(self) -> SuccessorTable:
        """The learned successor table (read-only use)."""
        return self._table

    def observe(self, key: Hashable) -> None:
        """Count the transition from the previous request to ``key``."""
        if self._last is not _NOTHING:
            self._table.update(self._last, key)
        self._last = key

    def candidates(self, key: Hashable) -> Iterator[Hashable]:
        """Iterate the known successors of ``key``, best first."""
        return iter(self._table.successors(key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(width={self.width})"
