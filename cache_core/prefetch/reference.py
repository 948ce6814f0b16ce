"""Plain-Python replay of a trace through an LRU cache with a prefetcher.

This is the executable specification of the evaluation protocol (design §4); the compiled kernels
of :mod:`cache_core.prefetch.kernels` must count exactly the same. It is slow (a dictionary
operation per event) and meant for tests and small traces.

For each request, in trace order:

1. (test segment, when there is a previous request) score the prefetcher's unfiltered ranked list
   made after the previous request against this key: top-1 and top-10;
2. serve the request from an LRU cache of ``capacity`` objects: a hit moves the key to the
   most-recently-used end, and the first hit on a prefetched object counts that prefetch as used;
   a miss inserts the key there, evicting from the other end;
3. the prefetcher observes the key;
4. the prefetcher proposes up to ``degree`` uncached keys; each is inserted like a demand miss
   (same capacity, most-recently-used end) and marked as a pending prefetch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from cache_core.policies.lru import LRUPolicy
from cache_core.prefetch.base import Prefetcher, check_count
from cache_core.prefetch.counts import PrefetchCounts

#: Length of the ranked list scored by the top-k accuracy.
TOP_K = 10


def simulate_prefetch(
    keys: Sequence[Hashable],
    capacity: int,
    prefetcher: Prefetcher,
    degree: int,
    test_start: int,
) -> PrefetchCounts:
    """Replay ``keys`` through an LRU cache with ``prefetcher``, in plain Python.

    Parameters
    ----------
    keys
        The requests, in order.
    capacity
        Cache capacity in objects; a positive integer.
    prefetcher
        A fresh prefetcher; it observes every request (it is mutated).
    degree
        At most this many prefetches per request.
    test_start
        Index of the first request of the test segment, where counting starts.

    Returns
    -------
    PrefetchCounts
        The test-segment counters.
    """
    check_count(degree, "degree")
    check_count(test_start, "test_start")
    cache = LRUPolicy(capacity)
    # Pending (not yet hit) prefetched keys → True if issued in the test segment.
    pending: dict[Hashable, bool] = {}
    requests = hits = issued = used = wasted = predictions = top1 = top10 = 0
    previous: Hashable = None

    def evict(victims: list[Hashable]) -> int:
        lost = 0
        for victim in victims:
            lost += pending.pop(victim, False)
        return lost

    for index, key in enumerate(keys):
        in_test = index >= test_start
        if in_test and index > 0:
            predictions += 1
            ranked = prefetcher.ranked(previous, TOP_K)
            top1 += bool(ranked) and ranked[0] == key
            top10 += key in ranked
        if in_test:
            requests += 1
        if key in cache:
            hits += in_test
            cache.hit(key)
            if key in pending:
                used += pending.pop(key)
        else:
            wasted += evict(cache.insert(key))
        prefetcher.observe(key)
        for proposal in prefetcher.propose(key, degree, cache.__contains__):
            wasted += evict(cache.insert(proposal))
            pending[proposal] = in_test
            issued += in_test
        previous = key
    return PrefetchCounts(
        requests=requests,
        hits=hits,
        prefetch_issued=issued,
        prefetch_used=used,
        prefetch_evicted_unused=wasted,
        predictions=predictions,
        top1=top1,
        top10=top10,
    )
