"""Least-recently-used eviction (reference implementation)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import ClassVar

from cache_core.policies.base import EvictionPolicy


class LRUPolicy(EvictionPolicy):
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

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # Insertion order is recency order: first item = LRU end, last item = MRU end.
        self._sizes: OrderedDict[Hashable, int] = OrderedDict()
        self._used = 0

    @property
    def used(self) -> int:
        """Units currently occupied by resident keys."""
        return self._used

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, key: object) -> bool:
        return key in self._sizes

    def hit(self, key: Hashable) -> None:
        """Move the resident ``key`` to the most-recently-used end."""
        self._sizes.move_to_end(key)

    def insert(self, key: Hashable, size: int = 1) -> list[Hashable]:
        """Admit ``key`` at the most-recently-used end, evicting from the other end."""
        if size > self._capacity:
            return []
        evicted: list[Hashable] = []
        while self._used + size > self._capacity:
            victim, victim_size = self._sizes.popitem(last=False)
            self._used -= victim_size
            evicted.append(victim)
        self._sizes[key] = size
        self._used += size
        return evicted

    def remove(self, key: Hashable) -> None:
        """Drop the resident ``key``."""
        self._used -= self._sizes.pop(key)
