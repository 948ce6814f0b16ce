"""The per-request LRU hit stream (``lru_hit_stream``) against the replay harness."""

from __future__ import annotations

import numpy as np
import pytest

from cache_core import InvalidCapacityError, Trace, replay
from cache_core.prefetch import InvalidPrefetchConfigError, UnknownPrefetcherError, compiled_counts
from cache_core.replay import lru_hit_stream
from cache_core.synthetic import ZipfPopularity, loop_workload, mixture_workload


@pytest.fixture(scope="module")
def trace() -> Trace:
    return mixture_workload(
        30_000, [ZipfPopularity(2_000, 0.9), loop_workload(30_000, 700, start=10**6)], [0.7, 0.3], 4
    )


@pytest.mark.parametrize("capacity", [2, 50, 400, 5_000])
def test_hits_equal_lru_replay(trace: Trace, capacity: int) -> None:
    hits = lru_hit_stream(trace.dense_ids, capacity)
    expected = replay(trace, "lru", capacity)
    assert hits.dtype == np.uint8
    assert hits.shape == (len(trace),)
    assert np.array_equal(hits, expected.hit_mask)
    assert int(hits.sum()) == expected.hits


@pytest.mark.parametrize("prefetcher", ["markov", "markov2"])
def test_prefetch_hits_equal_compiled_replay(trace: Trace, prefetcher: str) -> None:
    hits = lru_hit_stream(trace.dense_ids, 300, prefetcher=prefetcher, degree=2)
    counts, _ = compiled_counts(trace, 300, prefetcher, 2, 0)
    assert int(hits.sum()) == counts.hits
    assert int(hits.sum()) > int(lru_hit_stream(trace.dense_ids, 300).sum())


def test_small_cases_and_errors() -> None:
    assert lru_hit_stream([0, 1, 0, 2, 1], 2).tolist() == [0, 0, 1, 0, 0]
    assert lru_hit_stream(np.zeros(0, dtype=np.int64), 3).shape == (0,)
    with pytest.raises(InvalidCapacityError):
        lru_hit_stream([0, 1], 0)
    with pytest.raises(UnknownPrefetcherError, match="valid"):
        lru_hit_stream([0, 1], 2, prefetcher="next")
    with pytest.raises(InvalidPrefetchConfigError):
        lru_hit_stream([0, 1], 2, prefetcher="markov", degree=0)
    with pytest.raises(ValueError, match="non-negative"):
        lru_hit_stream([0, -1], 2)
