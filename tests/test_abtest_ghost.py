"""Ghost cache against the compiled replays, and the per-request hit bits of those replays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cache_core.keyhash import spatial_hashes, spatial_threshold
from cache_core.prefetch import InvalidPrefetchConfigError, evaluate_prefetch, replay_scored
from cache_core.replay import replay
from cache_core.synthetic import zipf_workload
from cache_core.trace import Trace
from customer_models.abtest import AbTestStateError, GhostCache, prefetcher_outcomes


def chain_trace(n: int, states: int, seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, states, size=(states, 3))
    keys = np.empty(n, dtype=np.uint64)
    k = 0
    for i in range(n):
        k = int(rng.integers(states)) if rng.random() < 0.2 else int(succ[k, rng.integers(3)])
        keys[i] = k * 7 + 1000
    return Trace(f"chain-{seed}", "synthetic", keys)


@pytest.mark.parametrize("capacity", [1, 17, 300])
def test_ghost_equals_lru_replay(capacity: int) -> None:
    trace = zipf_workload(20_000, 2_000, 0.9, seed=capacity)
    expected = replay(trace, "lru", capacity).hit_mask
    ghost = GhostCache(capacity)
    got = ghost.access_many(trace.keys.tolist())
    assert np.array_equal(got, expected.astype(np.int8))
    assert ghost.hits == int(expected.sum())
    assert len(ghost) == min(capacity, trace.unique_objects)


def test_ghost_with_prefetch_equals_scored_replay() -> None:
    trace = chain_trace(15_000, 400, seed=3)
    ids = trace.dense_ids
    n = len(trace)
    rng = np.random.default_rng(0)
    cand = rng.integers(-1, int(ids.max()) + 1, size=(n, 4))
    scores = rng.random((n, 4)).astype(np.float32)
    capacity, degree, threshold, test_start = 40, 2, 0.3, 5_000
    bits = np.zeros(n - test_start, dtype=np.uint8)
    result = replay_scored(
        ids,
        capacity,
        cand,
        scores,
        threshold=threshold,
        degree=degree,
        test_start=test_start,
        hits_out=bits,
    )
    assert int(bits.sum()) == result.hits
    # The ghost, driven request by request with the same proposals (best first).
    key_of = np.empty(int(ids.max()) + 1, dtype=np.uint64)
    key_of[ids] = trace.keys
    ghost = GhostCache(capacity)
    got = np.empty(n, dtype=np.uint8)
    for t in range(n):
        got[t] = bool(ghost.access(int(trace.keys[t])))
        row = [j for j in np.argsort(-scores[t], kind="stable") if cand[t, j] >= 0]
        proposals = [int(key_of[cand[t, j]]) for j in row if scores[t, j] >= threshold]
        ghost.prefetch(proposals, limit=degree)
    assert np.array_equal(got[test_start:], bits)


def test_sampled_ghost_simulates_only_its_sample() -> None:
    trace = zipf_workload(60_000, 20_000, 0.8, seed=1)
    ghost = GhostCache(2_000, sample_rate=0.1)
    assert ghost.sample_capacity == 200
    out = ghost.access_many(trace.keys.tolist())
    in_sample = spatial_hashes(trace.keys) < np.uint64(spatial_threshold(0.1))
    assert np.array_equal(out >= 0, in_sample)
    assert ghost.requests == int(in_sample.sum())
    assert ghost.prefetch(list(range(10_000_000, 10_000_100)), limit=5) <= 5


def test_sampled_ghost_estimates_the_full_hit_ratio() -> None:
    # SHARDS: the sampled hit ratio in a scaled cache estimates the full one. One sample of a
    # skewed workload can be far off (a few hot keys dominate); over samples it is close.
    errors = []
    for seed in range(6):
        trace = zipf_workload(60_000, 20_000, 0.6, seed=seed, key_offset=seed * 100_000)
        full = replay(trace, "lru", 2_000).hit_ratio
        ghost = GhostCache(2_000, sample_rate=0.1)
        ghost.access_many(trace.keys.tolist())
        errors.append(ghost.hit_ratio - full)
    assert abs(float(np.mean(errors))) < 0.03
    assert max(abs(e) for e in errors) < 0.1


def test_ghost_state_round_trip() -> None:
    keys = zipf_workload(5_000, 500, 1.0, seed=2).keys.tolist()
    ghost = GhostCache(50, sample_rate=0.5)
    ghost.access_many(keys[:2_500])
    ghost.prefetch([1, 2, 3], limit=2)
    restored = GhostCache.from_state_dict(json.loads(json.dumps(ghost.state_dict())))
    assert np.array_equal(ghost.access_many(keys[2_500:]), restored.access_many(keys[2_500:]))
    assert restored.state_dict() == ghost.state_dict()
    state = ghost.state_dict()
    state["keys"] = [1, 1]
    with pytest.raises(AbTestStateError, match="malformed"):
        GhostCache.from_state_dict(state)


@pytest.mark.parametrize("prefetcher", ["none", "next", "markov", "markov2"])
def test_evaluate_prefetch_hit_bits_match_counts(prefetcher: str) -> None:
    trace = chain_trace(8_000, 300, seed=5)
    plain = evaluate_prefetch(trace, 30, prefetcher)
    out = prefetcher_outcomes(trace, 30, prefetcher)
    assert out.hits.size == plain.requests_evaluated
    assert int(out.hits.sum()) == plain.hits
    assert out.hit_ratio == plain.hit_ratio
    if prefetcher == "none":
        mask = replay(trace, "lru", 30).hit_mask
        assert np.array_equal(out.hits, mask[out.test_start :])


def test_bad_hit_buffers_are_refused() -> None:
    trace = chain_trace(1_000, 50, seed=1)
    with pytest.raises(InvalidPrefetchConfigError, match="hits_out"):
        evaluate_prefetch(trace, 10, "markov", hits_out=np.zeros(5, dtype=np.uint8))
    ids = trace.dense_ids
    cand = np.zeros((1_000, 1), dtype=np.int64)
    with pytest.raises(InvalidPrefetchConfigError, match="hits_out"):
        replay_scored(
            ids,
            10,
            cand,
            np.ones((1_000, 1)),
            threshold=0.0,
            degree=1,
            test_start=0,
            hits_out=np.zeros(1_000, dtype=np.int64),
        )
