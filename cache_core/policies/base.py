"""The eviction-policy contract used by :class:`cache_core.CacheNode`.

A policy owns the *residency metadata* of a cache (which keys are resident, in what order, with
what bits and counters, plus any ghost history) and the occupancy accounting against its
capacity. It never sees values: the node stores those in its backend and asks the policy what to
evict. Capacity is in abstract units: the node passes ``size=1`` for every object when the cache
is sized in objects, and the object's byte size when it is sized in bytes.

These classes are the plain-Python *reference* implementations. The replay harness runs compiled
kernels (:mod:`cache_core.replay`) that must produce exactly the same hit sequence; the tests
compare the two.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import ClassVar

from cache_core.errors import InvalidCapacityError


class EvictionPolicy(ABC):
    """Residency metadata and victim selection for one cache.

    Parameters
    ----------
    capacity
        Capacity in units (objects or bytes); must be positive.

    Notes
    -----
    Call protocol, as a cache node (or libCacheSim's ``get``) uses it:

    * ``key in policy`` — is the key resident?
    * :meth:`hit` — a resident key was requested.
    * :meth:`insert` — a non-resident key is admitted; the policy evicts as needed and returns
      the evicted keys (possibly including ``key`` itself if it can never fit).
    * :meth:`remove` — a resident key is deleted explicitly (no ghost history is kept for it).
    """

    #: Registry name, e.g. ``"lru"``.
    name: ClassVar[str]

    def __init__(self, capacity: int) -> None:
        if int(capacity) != capacity or capacity <= 0:
            raise InvalidCapacityError(f"capacity must be a positive integer, got {capacity!r}")
        self._capacity = int(capacity)

    @property
    def capacity(self) -> int:
        """Capacity in units (objects or bytes)."""
        return self._capacity

    @property
    @abstractmethod
    def used(self) -> int:
        """Units currently occupied by resident keys."""

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of resident keys."""

    @abstractmethod
    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` is resident."""

    @abstractmethod
    def hit(self, key: Hashable) -> None:
        """Record a request for the resident ``key``."""

    @abstractmethod
    def insert(self, key: Hashable, size: int = 1) -> list[Hashable]:
        """Admit the non-resident ``key`` of ``size`` units.

        Returns
        -------
        list
            Keys evicted to make room, in eviction order. An object larger than the whole
            capacity is not admitted; then the list is empty and ``key not in self``.
        """

    @abstractmethod
    def remove(self, key: Hashable) -> None:
        """Drop the resident ``key`` without recording it in any ghost history."""
