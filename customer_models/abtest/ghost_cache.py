"""Metadata-only LRU cache that a challenger drives in shadow mode.

A :class:`GhostCache` holds keys only (their stable 64-bit ids, never values), so it costs a
few dozen bytes per key and no data copies. In shadow mode the challenger's prefetch proposals
are applied to it while the live requests are replayed through it, giving the hit/miss outcome
the challenger *would* have had on the same requests; the champion's outcome is the live
cache's. It follows the replay protocol of :func:`cache_core.prefetch.replay_scored` exactly
(a hit moves the key to the most-recently-used end; a miss inserts it there, evicting the
least-recently-used key; prefetches are chosen against the cache as it is, skipping resident
keys, then inserted like misses), so a ghost driven by a prefetcher's candidate rows reproduces
the compiled replay request by request.

**Spatial sampling.** With ``sample_rate < 1`` only keys whose sampling hash
(:func:`cache_core.keyhash.spatial_hash`, the node sampler's hash) falls below
``sample_rate * 2**64`` are simulated, in a cache of ``round(capacity * sample_rate)`` keys
(SHARDS, Waldspurger et al., FAST '15): the hit ratio of the sampled keys in the scaled cache
estimates the full cache's, at a cost on the serving path of one hash per request and the
cache work of a ``sample_rate`` share of requests. A sampled ghost's hit ratio is *not*
comparable with the live cache's, so the champion must then be measured on the same sample by
a second ghost of the same rate driven by the champion's proposals; the paired test compares
the two ghosts. Prefetch proposals are filtered to sampled keys before the per-request budget
is applied, in both ghosts alike, which keeps the comparison fair (it slightly overstates the
prefetch traffic of each contender on the sample).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cache_core.keyhash import key_id, spatial_hash, spatial_threshold
from customer_models.abtest.errors import AbTestStateError, InvalidAbTestConfigError
from customer_models.abtest.outcome_arrays import check_count
from customer_models.abtest.state import check_header, field

_KIND = "ghost-cache"
_VERSION = 1


class GhostCache:
    """Keys-only LRU cache with prefetch, optionally on a spatial sample of the keys.

    Parameters
    ----------
    capacity
        Capacity of the cache it shadows, in objects.
    sample_rate
        Share of the key space simulated, in ``(0, 1]`` (1: every key).

    Examples
    --------
    >>> ghost = GhostCache(2)
    >>> [ghost.access(k) for k in (1, 2, 1, 3, 2)]
    [False, False, True, False, False]
    >>> ghost.prefetch([4, 1, 5], limit=1), ghost.access(4), ghost.hit_ratio
    (1, True, 0.3333333333333333)
    """

    def __init__(self, capacity: int, *, sample_rate: float = 1.0) -> None:
        self.capacity = check_count(capacity, "capacity")
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, int | float)
            or not 0.0 < sample_rate <= 1.0
        ):
            raise InvalidAbTestConfigError(
                f"sample_rate must be a number in (0, 1], got {sample_rate!r}"
            )
        self.sample_rate = float(sample_rate)
        self._all = self.sample_rate >= 1.0
        self._threshold = spatial_threshold(self.sample_rate)
        self.sample_capacity = (
            self.capacity if self._all else max(1, round(self.capacity * self.sample_rate))
        )
        self._lru: OrderedDict[int, None] = OrderedDict()  # last = most recently used
        self._requests = 0
        self._hits = 0
        self._prefetched = 0

    # -- read-only state --------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Sampled requests simulated so far."""
        return self._requests

    @property
    def hits(self) -> int:
        """Hits among them."""
        return self._hits

    @property
    def hit_ratio(self) -> float:
        """``hits / requests`` (0 before any request)."""
        return self._hits / self._requests if self._requests else 0.0

    @property
    def prefetches(self) -> int:
        """Prefetched keys inserted so far."""
        return self._prefetched

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: Hashable) -> bool:
        return key_id(key) in self._lru

    def sampled(self, key: Hashable) -> bool:
        """Whether ``key`` belongs to the simulated sample (always true at rate 1)."""
        return self._all or spatial_hash(key) < self._threshold

    # -- serving path -------------------------------------------------------------------------

    def _admit(self, kid: int) -> None:
        lru = self._lru
        while len(lru) >= self.sample_capacity:
            lru.popitem(last=False)
        lru[kid] = None

    def access(self, key: Hashable) -> bool | None:
        """Simulate a demand request; return whether it hit (``None``: key not sampled)."""
        if not self._all and spatial_hash(key) >= self._threshold:
            return None
        kid = key_id(key)
        self._requests += 1
        lru = self._lru
        if kid in lru:
            lru.move_to_end(kid)
            self._hits += 1
            return True
        self._admit(kid)
        return False

    def access_many(self, keys: Iterable[Hashable]) -> NDArray[np.int8]:
        """Simulate demand requests in order; return ``1`` hit, ``0`` miss, ``-1`` not sampled."""
        access = self.access
        out = [access(k) for k in keys]
        return np.array([-1 if r is None else int(r) for r in out], dtype=np.int8)

    def prefetch(self, keys: Iterable[Hashable], *, limit: int | None = None) -> int:
        """Insert proposed keys that are sampled and not cached, best first, at most ``limit``.

        The keys to insert are chosen against the cache as it is before any insertion (as the
        compiled replay does), then inserted in order at the most-recently-used end.

        Parameters
        ----------
        keys
            The challenger's proposals after the last request, best first.
        limit
            Prefetch budget (``None``: no limit).

        Returns
        -------
        int
            Number of keys inserted.
        """
        budget = -1 if limit is None else check_count(limit, "limit", minimum=0)
        chosen: list[int] = []
        lru = self._lru
        for key in keys:
            if len(chosen) == budget:
                break
            if not self._all and spatial_hash(key) >= self._threshold:
                continue
            kid = key_id(key)
            if kid not in lru and kid not in chosen:
                chosen.append(kid)
        for kid in chosen:
            self._admit(kid)
        self._prefetched += len(chosen)
        return len(chosen)

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return the keys (least recently used first) and counters as JSON values."""
        return {
            "kind": _KIND,
            "version": _VERSION,
            "capacity": self.capacity,
            "sample_rate": self.sample_rate,
            "keys": list(self._lru),
            "requests": self._requests,
            "hits": self._hits,
            "prefetches": self._prefetched,
        }

    @classmethod
    def from_state_dict(cls, state: object) -> GhostCache:
        """Rebuild a ghost cache from :meth:`state_dict`.

        Raises
        ------
        AbTestStateError
            If ``state`` is not a valid saved ghost cache.
        """
        st = check_header(state, _KIND, _VERSION)
        try:
            ghost = cls(
                field(st, "capacity", int), sample_rate=field(st, "sample_rate", (float, int))
            )
        except InvalidAbTestConfigError as exc:
            raise AbTestStateError(f"saved settings are invalid: {exc}") from None
        keys = field(st, "keys", list)
        if (
            len(keys) > ghost.sample_capacity
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in keys)
            or len(set(keys)) != len(keys)
        ):
            raise AbTestStateError("saved ghost-cache keys are malformed")
        ghost._lru = OrderedDict.fromkeys(keys)
        ghost._requests = field(st, "requests", int)
        ghost._hits = field(st, "hits", int)
        ghost._prefetched = field(st, "prefetches", int)
        if not 0 <= ghost._hits <= ghost._requests or ghost._prefetched < 0:
            raise AbTestStateError("saved ghost-cache counters are inconsistent")
        return ghost
