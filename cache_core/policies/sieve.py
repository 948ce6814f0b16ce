"""SIEVE eviction (reference implementation)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from cache_core.policies.base import EvictionPolicy


class _Node:
    """One resident key in SIEVE's queue."""

    __slots__ = ("key", "newer", "older", "size", "visited")

    def __init__(self, key: Hashable, size: int) -> None:
        self.key = key
        self.size = size
        self.visited = False
        self.older: _Node | None = None
        self.newer: _Node | None = None


class SievePolicy(EvictionPolicy):
    """SIEVE (Zhang et al., NSDI '24): a FIFO queue with a visited bit and a moving hand.

    New keys enter at the head. A hit sets the key's visited bit. To evict, the hand starts
    where it stopped last time (or at the tail) and walks towards the head, clearing visited
    bits, wrapping to the tail; the first unvisited key is evicted and the hand stops at its
    newer neighbour.

    Parameters
    ----------
    capacity
        Capacity in units (objects or bytes).

    Notes
    -----
    Matches libCacheSim 0.3.5's ``Sieve`` exactly (hit sequences verified request by request in
    the tests). Measured gap on the bundled traces at 1 % and 5 % capacity: zero.
    """

    name: ClassVar[str] = "sieve"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._nodes: dict[Hashable, _Node] = {}
        self._head: _Node | None = None  # newest
        self._tail: _Node | None = None  # oldest
        self._hand: _Node | None = None
        self._used = 0

    @property
    def used(self) -> int:
        """Units currently occupied by resident keys."""
        return self._used

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: object) -> bool:
        return key in self._nodes

    def hit(self, key: Hashable) -> None:
        """Set the resident key's visited bit."""
        self._nodes[key].visited = True

    def insert(self, key: Hashable, size: int = 1) -> list[Hashable]:
        """Admit ``key`` at the head, evicting with the hand as needed."""
        if size > self._capacity:
            return []
        evicted: list[Hashable] = []
        while self._used + size > self._capacity:
            evicted.append(self._evict())
        node = _Node(key, size)
        node.older = self._head
        if self._head is not None:
            self._head.newer = node
        self._head = node
        if self._tail is None:
            self._tail = node
        self._nodes[key] = node
        self._used += size
        return evicted

    def remove(self, key: Hashable) -> None:
        """Drop the resident ``key``."""
        node = self._nodes[key]
        if node is self._hand:
            self._hand = node.newer
        self._unlink(node)

    def _evict(self) -> Hashable:
        node = self._hand if self._hand is not None else self._tail
        assert node is not None
        while node.visited:
            node.visited = False
            node = node.newer if node.newer is not None else self._tail
            assert node is not None
        self._hand = node.newer
        self._unlink(node)
        return node.key

    def _unlink(self, node: _Node) -> None:
        if node.older is not None:
            node.older.newer = node.newer
        else:
            self._tail = node.newer
        if node.newer is not None:
            node.newer.older = node.older
        else:
            self._head = node.older
        del self._nodes[node.key]
        self._used -= node.size
