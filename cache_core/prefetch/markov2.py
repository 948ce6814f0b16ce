"""Second-order Markov prefetching: successors of the last two keys, backed by first order."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import ClassVar

from cache_core.prefetch.base import Prefetcher
from cache_core.prefetch.markov import DEFAULT_WIDTH
from cache_core.prefetch.successor_table import SuccessorTable

#: Default number of successors kept per ``(previous, current)`` context. Smaller than the
#: first-order width because pair contexts are far more numerous than keys.
DEFAULT_CONTEXT_WIDTH = 8

_NOTHING: object = object()


class Markov2Prefetcher(Prefetcher):
    """Learn ``(key before, key) → next key`` counts online, falling back to first order.

    The ranked list after a request for ``key`` is the row of the context
    ``(key observed before key, key)``, best first, followed by the first-order row of ``key``
    without the keys already listed. :meth:`propose` walks that list, skipping cached keys, as far
    as needed. The second-order context is used only when ``key`` is the latest observed key (the
    normal protocol: :meth:`observe` then :meth:`propose`); otherwise the list is first order only.

    Parameters
    ----------
    width
        Successors kept per key in the first-order table.
    context_width
        Successors kept per pair context in the second-order table.

    Notes
    -----
    Both tables use Space-Saving rows
    (:class:`~cache_core.prefetch.successor_table.SuccessorTable`); ties break most recently
    updated first. Only row widths are bounded: memory is ``O(width)`` per distinct key and
    ``O(context_width)`` per distinct pair of consecutive keys seen.
    """

    name: ClassVar[str] = "markov2"

    def __init__(
        self, width: int = DEFAULT_WIDTH, context_width: int = DEFAULT_CONTEXT_WIDTH
    ) -> None:
        self._first = SuccessorTable(width)
        self._second = SuccessorTable(context_width)
        self._before: object = _NOTHING
        self._last: object = _NOTHING

    @property
    def width(self) -> int:
        """Successors kept per key (first order)."""
        return self._first.width

    @property
    def context_width(self) -> int:
        """Successors kept per pair context (second order)."""
        return self._second.width

    def observe(self, key: Hashable) -> None:
        """Count the transitions into ``key`` from the last key and from the last two keys."""
        if self._last is not _NOTHING:
            self._first.update(self._last, key)
            if self._before is not _NOTHING:
                self._second.update((self._before, self._last), key)
        self._before, self._last = self._last, key

    def candidates(self, key: Hashable) -> Iterator[Hashable]:
        """Iterate the second-order successors, then the remaining first-order ones."""
        listed: tuple[Hashable, ...] = ()
        if self._before is not _NOTHING and key == self._last:
            listed = self._second.successors((self._before, key))
        yield from listed
        for successor in self._first.successors(key):
            if successor not in listed:
                yield successor

    def __repr__(self) -> str:
        return f"{type(self).__name__}(width={self.width}, context_width={self.context_width})"
