"""Least-recently-used eviction (reference implementation)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from cache_core.policies.fifo import FIFOPolicy


class LRUPolicy(FIFOPolicy):
    """Evict the least recently requested key.

    Matches libCacheSim's ``LRU`` exactly: a hit moves the key to the most-recently-used end; a
    miss evicts from the least-recently-used end while ``used + size > capacity`` and then
    inserts the key at the most-recently-used end.

    Parameters
    ----------
    capacity
        Capacity in units (objects or bytes).
    """

    name: ClassVar[str] = "lru"

    # The FIFO queue with one change: a hit moves the key to the tail, so the queue's order is
    # recency order (head = least recently used) and FIFO's admission and eviction apply as is.

    def hit(self, key: Hashable) -> None:
        """Move the resident ``key`` to the most-recently-used end."""
        self._sizes.move_to_end(key)
