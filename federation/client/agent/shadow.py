"""Shadow evaluation: champion and challenger on two ghost caches over one key sample.

During a shadow A/B test the requests of a spatial (key-hash) sample drive two ghost caches —
one prefetched for by the champion, one by the challenger — whose capacity is the node's scaled
by the sampling rate, as SHARDS does.
Each sampled request gives a *pair* of outcomes (did each ghost hit?) for the sequential test.
Running the champion on a ghost too, rather than reading the live node, keeps the comparison
exact: with identical models both ghosts hit on exactly the same requests at any rate, whereas
a scaled ghost against the full-size node would differ by the sampling error alone.

The sample is decided for a whole batch at once with one vectorised multiplication (Fibonacci
hashing, :func:`sample_hashes`), so the serving loop runs unsampled requests exactly as without
a test. Prefetch candidates are filtered with the
same hash (:func:`sample_hash`), so the ghosts simulate exactly the sampled keys.

:class:`GhostLRU` follows the replay protocol of :class:`customer_models.abtest.GhostCache`
request for request (a test checks it) with a third of its cost per step, which is what keeps a
test within its overhead target on the serving path (``BENCHMARKS.md``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

_M64 = (1 << 64) - 1
#: Fibonacci hashing multiplier: ``2**64`` divided by the golden ratio, made odd.
_GOLDEN = 0x9E3779B97F4A7C15
_NGOLDEN = np.uint64(_GOLDEN)
#: Sampling decisions remembered for prefetch candidates before the memo is cleared.
_MEMO_LIMIT = 1 << 20


def sample_hash(key: int) -> int:
    """Return the sampling hash of an unsigned 64-bit key: ``key * golden mod 2**64``.

    Multiplicative (Fibonacci) hashing spreads consecutive and strided keys evenly over the
    hash range (a Weyl sequence), which is what a sample of cache keys needs, in one numpy
    operation per batch.

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)
    >>> [sample_hash(k) for k in keys.tolist()] == sample_hashes(keys).tolist()
    True
    """
    return (key * _GOLDEN) & _M64


def sample_hashes(keys: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Vectorised :func:`sample_hash` (``uint64`` arithmetic wraps modulo ``2**64``)."""
    out: NDArray[np.uint64] = np.asarray(keys, dtype=np.uint64) * _NGOLDEN
    return out


def sample_threshold(rate: float) -> int:
    """Return the hash bound of a sampling rate in ``(0, 1]`` (``2**64`` keeps every key)."""
    return min(max(round(rate * 2.0**64), 1), 1 << 64)


def sample_mask(keys: NDArray[np.uint64], rate: float) -> NDArray[np.bool_]:
    """Return which of ``keys`` belong to the sample of ``rate``."""
    if rate >= 1.0:
        return np.ones(keys.shape[0], dtype=np.bool_)
    mask: NDArray[np.bool_] = sample_hashes(keys) < np.uint64(sample_threshold(rate))
    return mask


class GhostLRU:
    """A metadata-only LRU cache of keys with prefetch (the ghost of a shadow test).

    A hit moves the key to the most-recently-used end; a miss inserts it there, evicting the
    least-recently-used key; :meth:`prefetch` chooses its keys against the cache as it is
    (skipping resident ones), then inserts them like misses.

    Parameters
    ----------
    capacity
        Capacity in objects (positive).

    Examples
    --------
    >>> ghost = GhostLRU(2)
    >>> [ghost.access(k) for k in (1, 2, 1, 3, 2)]
    [0, 0, 1, 0, 0]
    >>> ghost.prefetch([4, 1, 5], 1), ghost.access(4)
    (1, 1)
    """

    __slots__ = ("_keys", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"ghost capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._keys: OrderedDict[int, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"GhostLRU(capacity={self.capacity}, resident={len(self._keys)})"

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def access(self, key: int) -> int:
        """Request ``key``: return 1 on a hit, else 0 (and insert it)."""
        keys = self._keys
        if key in keys:
            keys.move_to_end(key)
            return 1
        if len(keys) >= self.capacity:
            keys.popitem(last=False)
        keys[key] = None
        return 0

    def prefetch(self, ranked: Iterable[int], limit: int) -> int:
        """Insert the first ``limit`` non-resident keys of ``ranked``; return how many."""
        keys = self._keys
        chosen: list[int] = []
        for key in ranked:
            if key not in keys and key not in chosen:
                chosen.append(key)
                if len(chosen) == limit:
                    break
        for key in chosen:
            if len(keys) >= self.capacity:
                keys.popitem(last=False)
            keys[key] = None
        return len(chosen)

    def keys(self) -> list[int]:
        """Return the resident keys, least recently used first."""
        return list(self._keys)

    @classmethod
    def from_keys(cls, capacity: int, keys: list[int]) -> GhostLRU:
        """Rebuild a ghost holding ``keys`` (least recently used first)."""
        if len(keys) > capacity or len(set(keys)) != len(keys):
            raise ValueError("ghost keys exceed the capacity or repeat")
        ghost = cls(capacity)
        ghost._keys = OrderedDict.fromkeys(keys)
        return ghost


class ShadowPair:
    """The champion's and the challenger's ghost caches on one key sample.

    Parameters
    ----------
    capacity
        The live node's capacity in objects.
    sample_rate
        Share of keys the ghosts see, in ``(0, 1]``; their capacity is
        ``max(1, round(capacity * sample_rate))``.
    degree
        Prefetch budget per request (as the node's).
    """

    def __init__(self, capacity: int, sample_rate: float, degree: int) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.degree = degree
        scaled = capacity if sample_rate >= 1.0 else max(1, round(capacity * sample_rate))
        self.champion = GhostLRU(scaled)
        self.challenger = GhostLRU(scaled)
        self._all = sample_rate >= 1.0
        self._threshold = sample_threshold(sample_rate)
        self._memo: dict[int, bool] = {}

    def __repr__(self) -> str:
        return f"ShadowPair(sample_rate={self.sample_rate}, ghost_capacity={self.capacity})"

    @property
    def capacity(self) -> int:
        """Capacity of each ghost cache in objects."""
        return self.champion.capacity

    def sample_mask(self, keys: NDArray[np.uint64]) -> NDArray[np.bool_]:
        """Return which of ``keys`` belong to the sample."""
        return sample_mask(keys, self.sample_rate)

    def step(
        self, key: int, champion_ranked: Iterable[int], challenger_ranked: Iterable[int]
    ) -> tuple[int, int]:
        """Serve sampled ``key`` on both ghosts, then prefetch each side's sampled candidates.

        Returns
        -------
        tuple
            ``(champion_hit, challenger_hit)`` as 0/1.
        """
        a = self.champion.access(key)
        b = self.challenger.access(key)
        if not self._all:  # most candidates fall outside the sample: usually nothing to do
            champion_ranked = self._sampled(champion_ranked)
            challenger_ranked = self._sampled(challenger_ranked)
            if champion_ranked:
                self.champion.prefetch(champion_ranked, self.degree)
            if challenger_ranked:
                self.challenger.prefetch(challenger_ranked, self.degree)
            return a, b
        self.champion.prefetch(champion_ranked, self.degree)
        self.challenger.prefetch(challenger_ranked, self.degree)
        return a, b

    def _sampled(self, ranked: Iterable[int]) -> list[int]:
        """Keep the sampled candidates, in order (decisions memoised: candidates recur)."""
        memo = self._memo
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        bound = self._threshold
        out: list[int] = []
        for key in ranked:
            kept = memo.get(key)
            if kept is None:
                kept = memo[key] = sample_hash(key) < bound
            if kept:
                out.append(key)
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return both ghosts' states and the sampling rate (JSON values)."""
        return {
            "sample_rate": self.sample_rate,
            "degree": self.degree,
            "capacity": self.capacity,
            "champion": self.champion.keys(),
            "challenger": self.challenger.keys(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ShadowPair:
        """Rebuild a pair from :meth:`state_dict`."""
        pair = cls.__new__(cls)
        pair.sample_rate = float(state["sample_rate"])
        pair.degree = int(state["degree"])
        capacity = int(state["capacity"])
        pair.champion = GhostLRU.from_keys(capacity, [int(k) for k in state["champion"]])
        pair.challenger = GhostLRU.from_keys(capacity, [int(k) for k in state["challenger"]])
        pair._all = pair.sample_rate >= 1.0
        pair._threshold = sample_threshold(pair.sample_rate)
        pair._memo = {}
        return pair
