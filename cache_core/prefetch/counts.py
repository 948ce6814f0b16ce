"""Raw counters of a prefetch-aware replay, shared by the compiled and the reference paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrefetchCounts:
    """What a replay with prefetching counted on its test segment.

    Every counter covers the test segment only (requests from ``test_start`` on); the cache and
    the prefetcher start that segment in the state the first part of the replay left them.

    Attributes
    ----------
    requests
        Demand requests in the test segment.
    hits
        Those served from the cache (whether the object came by demand or by prefetch).
    prefetch_issued
        Prefetches inserted after test-segment requests.
    prefetch_used
        Of those, the ones hit by a demand request before being evicted (each counts once).
    prefetch_evicted_unused
        Of those, the ones evicted before any demand request for them. The issued prefetches
        still resident and unused when the trace ends are
        ``prefetch_issued - prefetch_used - prefetch_evicted_unused``.
    predictions
        Test requests that had a previous request, i.e. for which a prediction existed.
    top1
        Of those, requests whose key was the first of the prefetcher's ranked list (not filtered
        by the cache) made after the previous request.
    top10
        Requests whose key was among the first ten of that list.
    """

    requests: int
    hits: int
    prefetch_issued: int
    prefetch_used: int
    prefetch_evicted_unused: int
    predictions: int
    top1: int
    top10: int
