"""First-in-first-out eviction (reference implementation)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import ClassVar

from cache_core.policies.base import EvictionPolicy


class FIFOPolicy(EvictionPolicy):
    """Evict the key that was admitted earliest; hits do not change the order.

    Matches libCacheSim's ``FIFO`` exactly.

    Parameters
    ----------
    capacity
        Capacity in units (objects or bytes).
    """

    name: ClassVar[str] = "fifo"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # First item = oldest admission.
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
        """Record a hit; FIFO keeps no per-hit state."""

    def insert(self, key: Hashable, size: int = 1) -> list[Hashable]:
        """Admit ``key`` at the tail of the queue, evicting from its head."""
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
