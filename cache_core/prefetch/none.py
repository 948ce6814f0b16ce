"""The null prefetcher: plain demand caching, the LRU baseline of the evaluation."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import ClassVar

from cache_core.prefetch.base import Prefetcher


class NoPrefetcher(Prefetcher):
    """Never proposes anything and learns nothing."""

    name: ClassVar[str] = "none"

    def observe(self, key: Hashable) -> None:
        """Ignore the request."""

    def candidates(self, key: Hashable) -> Iterator[Hashable]:
        """Iterate nothing."""
        return iter(())
