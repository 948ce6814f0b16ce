"""The online prefetcher contract used by a live cache node and by the reference replay.

A prefetcher watches the request stream of one cache and, after each request, proposes keys to
load ahead of demand. It learns only from requests that already happened (no look-ahead).

Call protocol, once per request for ``key`` (after the cache has served it):

1. :meth:`Prefetcher.observe` — learn from the request.
2. :meth:`Prefetcher.propose` — get up to ``degree`` keys to prefetch. The caller passes an
   ``is_cached`` predicate; the prefetcher skips keys for which it returns ``True`` and keeps
   walking down its ranked list as far as needed to fill the budget, so a successor that is
   already resident never wastes a prefetch slot. The caller then inserts every returned key
   (all are distinct and, at the time of the call, not cached) at the most-recently-used end,
   after the whole list has been computed.

:meth:`Prefetcher.ranked` gives the same predictions without the cache filter; the evaluation uses
it for next-key accuracy (top-1, top-10).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator
from itertools import islice
from typing import ClassVar

from cache_core.prefetch.errors import InvalidPrefetchConfigError

#: Predicate telling whether a key is resident in the cache.
IsCached = Callable[[Hashable], bool]


def check_count(value: int, what: str) -> int:
    """Return ``value`` if it is a non-negative integer, else raise.

    Raises
    ------
    InvalidPrefetchConfigError
        If ``value`` is not an ``int`` or is negative.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidPrefetchConfigError(f"{what} must be a non-negative integer, got {value!r}")
    return value


class Prefetcher(ABC):
    """An online next-key predictor that proposes keys to prefetch.

    Subclasses implement :meth:`observe` and :meth:`candidates` (the ranked predictions, best
    first, distinct); :meth:`ranked` and :meth:`propose` are derived from them and may be
    overridden (see :class:`~cache_core.prefetch.next_key.NextKeyPrefetcher`).
    """

    #: Registry name, e.g. ``"markov"``.
    name: ClassVar[str]

    @abstractmethod
    def observe(self, key: Hashable) -> None:
        """Learn from a request for ``key`` that has just happened."""

    @abstractmethod
    def candidates(self, key: Hashable) -> Iterator[Hashable]:
        """Iterate the predicted next keys after a request for ``key``, best first.

        The keys are distinct. The iterator may be infinite; callers take what they need.
        """

    def ranked(self, key: Hashable, n: int) -> list[Hashable]:
        """Return the top ``n`` predictions for the request after ``key``, ignoring the cache.

        Parameters
        ----------
        key
            The key just requested (and observed).
        n
            How many predictions to return at most.

        Returns
        -------
        list
            Up to ``n`` distinct keys, best first.
        """
        return list(islice(self.candidates(key), check_count(n, "n")))

    def propose(
        self, key: Hashable, degree: int, is_cached: IsCached | None = None
    ) -> list[Hashable]:
        """Return up to ``degree`` keys to prefetch after the request for ``key``.

        Parameters
        ----------
        key
            The key just requested (and observed).
        degree
            The prefetch budget for this request.
        is_cached
            Residency predicate of the cache. Keys for which it returns ``True`` are skipped and
            the prefetcher walks further down its ranked list, as far as needed, to fill the
            budget. ``None`` means nothing is cached.

        Returns
        -------
        list
            Up to ``degree`` distinct keys, best first, none of them cached.
        """
        check_count(degree, "degree")
        stream: Iterable[Hashable] = self.candidates(key)
        if is_cached is not None:
            stream = (k for k in stream if not is_cached(k))
        return list(islice(stream, degree))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
