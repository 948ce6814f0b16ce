"""Read-only statistics snapshot of a :class:`~cache_core.node.CacheNode`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheStats"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of a cache node at one moment.

    Attributes
    ----------
    hits, misses
        ``get`` lookups (single or batched) that found / did not find the key resident.
    puts
        ``put`` calls (single or batched items), including updates of resident keys.
    deletes
        ``delete`` calls, whether or not the key was resident.
    evictions
        Objects evicted by the policy to make room (explicit deletes are not evictions).
    prefetches_issued
        Prefetch hints that inserted an object (hints for resident keys are not counted).
    prefetch_used
        Prefetched objects hit at least once before leaving the cache (counted on the first
        hit).
    prefetch_evicted_unused
        Prefetched objects that left the cache without a hit: evicted, deleted, or overwritten by
        a ``put`` before any ``get`` found them.
    prefetch_resident_unused
        Prefetched objects still resident and not yet hit.

    Notes
    -----
    ``prefetches_issued == prefetch_used + prefetch_evicted_unused + prefetch_resident_unused``
    always holds.
    """

    hits: int = 0
    misses: int = 0
    puts: int = 0
    deletes: int = 0
    evictions: int = 0
    prefetches_issued: int = 0
    prefetch_used: int = 0
    prefetch_evicted_unused: int = 0
    prefetch_resident_unused: int = 0

    @property
    def gets(self) -> int:
        """Number of lookups, ``hits + misses``."""
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float:
        """``hits / gets``, or 0.0 before any lookup."""
        gets = self.hits + self.misses
        return self.hits / gets if gets else 0.0

    @property
    def prefetch_precision(self) -> float:
        """Fraction of *decided* prefetches that were used.

        ``prefetch_used / (prefetch_used + prefetch_evicted_unused)``; objects still resident and
        unused are not yet decided and are left out. 0.0 when nothing is decided.
        """
        decided = self.prefetch_used + self.prefetch_evicted_unused
        return self.prefetch_used / decided if decided else 0.0
