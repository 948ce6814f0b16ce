"""Next-key prefetching: sequential readahead over numeric keys."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from itertools import count
from typing import ClassVar

import numpy as np

from cache_core.prefetch.base import IsCached, Prefetcher, check_count


def _as_int(key: Hashable) -> int | None:
    """Return ``key`` as a Python ``int`` if it is an integer (not a bool), else ``None``."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int | np.integer):
        return int(key)
    return None


class NextKeyPrefetcher(Prefetcher):
    """Predict ``key + 1, key + 2, ...`` for integer keys (a readahead window).

    After a request for ``key`` it proposes those of ``key + 1 .. key + degree`` that are not
    cached: the window is fixed, so it does not walk past ``key + degree`` when some of the
    window is resident. Keys that are not integers get no proposals. It keeps no state.
    """

    name: ClassVar[str] = "next"

    def observe(self, key: Hashable) -> None:
        """Ignore the request (the predictor is stateless)."""

    def candidates(self, key: Hashable) -> Iterator[Hashable]:
        """Iterate ``key + 1, key + 2, ...`` (nothing for a non-integer key)."""
        base = _as_int(key)
        if base is None:
            return iter(())
        return count(base + 1)

    def propose(
        self, key: Hashable, degree: int, is_cached: IsCached | None = None
    ) -> list[Hashable]:
        """Return the keys of ``key + 1 .. key + degree`` that are not cached.

        Parameters
        ----------
        key
            The key just requested.
        degree
            Readahead window, and prefetch budget.
        is_cached
            Residency predicate; ``None`` means nothing is cached.

        Returns
        -------
        list
            The uncached keys of the window, in increasing order.
        """
        window = self.ranked(key, check_count(degree, "degree"))
        if is_cached is None:
            return window
        return [k for k in window if not is_cached(k)]
