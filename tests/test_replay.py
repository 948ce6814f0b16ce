"""Compiled replay kernels and harness: exact agreement with the reference policies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from cache_core.errors import InvalidCapacityError, UnknownPolicyError
from cache_core.policies import make_policy
from cache_core.replay import REPLAY_POLICIES, ReplayResult, next_use, replay, resolve_capacity
from cache_core.trace import Trace

ONLINE = ("lru", "fifo", "arc", "s3fifo", "sieve")


def make_trace(keys: list[int] | NDArray[np.int64]) -> Trace:
    return Trace(name="synthetic", format="synthetic", keys=np.asarray(keys, dtype=np.uint64))


def reference_mask(policy: str, keys: NDArray[np.int64], capacity: int, sizes: NDArray[np.int64]):
    ref = make_policy(policy, capacity)
    out = np.zeros(len(keys), dtype=np.uint8)
    for i, key in enumerate(keys.tolist()):
        if key in ref:
            ref.hit(key)
            out[i] = 1
        else:
            ref.insert(key, int(sizes[i]))
    return out


def belady_reference(keys: list[int], capacity: int, sizes: list[int]) -> list[bool]:
    """Obviously-correct Belady: on a miss, evict the resident key used farthest in the future.

    Ties between keys never used again go to the larger dense id (the kernel's convention).
    """
    n = len(keys)
    resident: dict[int, int] = {}
    out = []
    for i, key in enumerate(keys):
        if key in resident:
            out.append(True)
            continue
        out.append(False)
        if sizes[i] > capacity:
            continue

        def next_request(k: int, i: int = i) -> int:
            for j in range(i + 1, n):
                if keys[j] == k:
                    return j
            return n + k

        while sum(resident.values()) + sizes[i] > capacity:
            del resident[max(resident, key=next_request)]
        resident[key] = sizes[i]
    return out


traces = st.lists(st.integers(0, 40), min_size=0, max_size=300)


@pytest.mark.parametrize("policy", ONLINE)
@settings(max_examples=80, deadline=None)
@given(keys=traces, capacity=st.integers(1, 45))
def test_kernel_matches_reference_unit_sizes(policy: str, keys: list[int], capacity: int) -> None:
    trace = make_trace(keys)
    result = replay(trace, policy, capacity)
    expected = reference_mask(policy, trace.dense_ids, capacity, np.ones(len(keys), np.int64))
    np.testing.assert_array_equal(result.hit_mask, expected)
    assert result.hits == int(expected.sum())


@pytest.mark.parametrize("policy", ONLINE)
@settings(max_examples=60, deadline=None)
@given(
    keys=traces,
    capacity=st.integers(1, 120),
    object_sizes=st.lists(st.integers(1, 12), min_size=41, max_size=41),
)
def test_kernel_matches_reference_sized(
    policy: str, keys: list[int], capacity: int, object_sizes: list[int]
) -> None:
    trace = make_trace(keys)
    sizes = np.asarray([object_sizes[k] for k in keys], dtype=np.int64)
    result = replay(trace, policy, capacity, sizes=sizes)
    expected = reference_mask(policy, trace.dense_ids, capacity, sizes)
    np.testing.assert_array_equal(result.hit_mask, expected)


@settings(max_examples=100, deadline=None)
@given(keys=traces, capacity=st.integers(1, 45))
def test_belady_matches_simple_reference(keys: list[int], capacity: int) -> None:
    trace = make_trace(keys)
    result = replay(trace, "belady", capacity)
    dense = trace.dense_ids.tolist()
    expected = belady_reference(dense, capacity, [1] * len(dense))
    np.testing.assert_array_equal(result.hit_mask.astype(bool), expected)


@settings(max_examples=60, deadline=None)
@given(
    keys=traces,
    capacity=st.integers(1, 80),
    object_sizes=st.lists(st.integers(1, 9), min_size=41, max_size=41),
)
def test_belady_sized_matches_simple_reference(
    keys: list[int], capacity: int, object_sizes: list[int]
) -> None:
    trace = make_trace(keys)
    dense = trace.dense_ids.tolist()
    sizes = [object_sizes[k] for k in dense]
    result = replay(trace, "belady", capacity, sizes=np.asarray(sizes, dtype=np.int64))
    np.testing.assert_array_equal(
        result.hit_mask.astype(bool), belady_reference(dense, capacity, sizes)
    )


@settings(max_examples=60, deadline=None)
@given(keys=traces, capacity=st.integers(1, 45))
def test_belady_is_optimal(keys: list[int], capacity: int) -> None:
    trace = make_trace(keys)
    best = replay(trace, "belady", capacity).hits
    for policy in ONLINE:
        assert replay(trace, policy, capacity).hits <= best


@pytest.mark.parametrize("policy", REPLAY_POLICIES)
def test_same_input_twice_same_result(policy: str) -> None:
    rng = np.random.default_rng(7)
    trace = make_trace((rng.zipf(1.2, 20_000) % 3000).astype(np.int64))
    first = replay(trace, policy, 150)
    second = replay(trace, policy, 150)
    assert first == second  # compares everything but the timing and the mask object
    np.testing.assert_array_equal(first.hit_mask, second.hit_mask)


def test_result_fields() -> None:
    trace = make_trace([1, 2, 1, 3, 1, 2])
    result = replay(trace, "LRU", 2)
    assert isinstance(result, ReplayResult)
    assert result.policy == "lru"
    assert result.capacity == 2
    assert result.requests == 6
    assert result.hits == 2
    assert result.hit_ratio == pytest.approx(2 / 6)
    assert result.miss_ratio == pytest.approx(4 / 6)
    assert result.replay_seconds >= 0
    assert result.hit_mask.tolist() == [0, 0, 1, 0, 1, 0]
    assert result.hit_mask.dtype == np.uint8
    with pytest.raises(AttributeError):
        result.hits = 3  # type: ignore[misc]


@pytest.mark.parametrize("policy", REPLAY_POLICIES)
def test_empty_trace(policy: str) -> None:
    result = replay(make_trace([]), policy, 5)
    assert result.requests == 0
    assert result.hits == 0
    assert result.hit_ratio == 0.0


def test_capacity_above_unique_objects_gives_only_compulsory_misses() -> None:
    keys = [0, 1, 2, 0, 1, 2, 3]
    for policy in REPLAY_POLICIES:
        assert replay(make_trace(keys), policy, 100).hits == 3


def test_replay_rejects_bad_arguments() -> None:
    trace = make_trace([1, 2, 3])
    with pytest.raises(UnknownPolicyError, match="belady"):
        replay(trace, "lfu", 2)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidCapacityError):
            replay(trace, "lru", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        replay(trace, "lru", 2, sizes=np.ones(2, dtype=np.int64))


def test_replay_policies_tuple() -> None:
    assert REPLAY_POLICIES == ("lru", "fifo", "arc", "s3fifo", "sieve", "belady")


def test_next_use() -> None:
    ids = np.array([0, 1, 0, 2, 1], dtype=np.int64)
    assert next_use(ids).tolist() == [2, 4, 5 + 0, 5 + 2, 5 + 1]


@pytest.mark.parametrize(
    ("size", "unique", "expected"),
    [
        (500, 10, 500),
        ("500", 10, 500),
        (0.01, 76_349, 763),
        ("0.05", 76_349, 3817),
        ("5%", 76_349, 3817),
        (0.01, 7_075, 71),
        (0.01, 50, 2),  # 0.5 rounds to 1, raised to the minimum of 2
        (0.015, 100, 2),  # 1.5 rounds half up to 2
        (0.025, 100, 3),  # 2.5 rounds half up to 3
        (np.int64(7), 3, 7),
        (1, 10, 1),
    ],
)
def test_resolve_capacity(size: object, unique: int, expected: int) -> None:
    assert resolve_capacity(size, unique) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "size",
    [
        0,
        -1,
        "0",
        "-5",
        0.0,
        -0.5,
        1.0,
        1.5,
        "1.0",
        "1.5",
        "abc",
        "",
        None,
        True,
        float("nan"),
        float("inf"),
        "100%",
        [1],
    ],
)
def test_resolve_capacity_rejects(size: object) -> None:
    with pytest.raises(InvalidCapacityError):
        resolve_capacity(size, 1000)  # type: ignore[arg-type]


def test_resolve_capacity_fraction_of_empty_trace() -> None:
    with pytest.raises(InvalidCapacityError, match="no objects"):
        resolve_capacity(0.1, 0)
