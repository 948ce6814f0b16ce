"""Property tests of CacheNode over every registered policy and both capacity modes."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_core.node import CacheNode
from cache_core.policies import POLICIES
from cache_core.sampler import AccessSampler

POLICY_NAMES = sorted(POLICIES)
CAPACITY = 6  # objects, or bytes * 10 in byte mode
KEYS = st.integers(min_value=0, max_value=14)
SIZES = st.integers(min_value=0, max_value=25)

OPS = st.one_of(
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("put"), KEYS, SIZES),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("prefetch"), st.lists(KEYS, max_size=4)),
    st.tuples(st.just("get_many"), st.lists(KEYS, max_size=6)),
    st.tuples(st.just("put_many"), st.lists(st.tuples(KEYS, SIZES), max_size=4)),
)


def make_node(policy: str, by_bytes: bool, sampler: AccessSampler | None = None) -> CacheNode:
    if by_bytes:
        return CacheNode(policy, capacity_bytes=CAPACITY * 10, sampler=sampler)
    return CacheNode(policy, capacity=CAPACITY, sampler=sampler)


def replay(node: CacheNode, ops: list[tuple[Any, ...]], *, batch: bool = True) -> list[Any]:
    """Apply ops, checking invariants after each; return every observable result."""
    written: dict[Hashable, tuple[object, int]] = {}  # last value and size per key
    results: list[Any] = []
    gets = 0
    serial = 0
    for op in ops:
        kind = op[0]
        if kind == "get":
            gets += 1
            value = node.get(op[1])
            if value is not None:
                assert value == written[op[1]][0]
            results.append(value)
        elif kind == "put":
            serial += 1
            value = ("v", op[1], serial)
            node.put(op[1], value, size=op[2])
            written[op[1]] = (value, op[2])
            # Only a byte-capacity S3-FIFO refuses objects (larger than its small queue).
            assert node.contains(op[1]) or (node.by_bytes and node.policy.name == "s3fifo")
            assert node.get(op[1]) == (value if node.contains(op[1]) else None)
            gets += 1
        elif kind == "delete":
            results.append(node.delete(op[1]))
            written.pop(op[1], None)
            assert not node.contains(op[1])
            assert node.get(op[1]) is None
            gets += 1
        elif kind == "prefetch":
            serial += 1
            before = node.stats.prefetches_issued
            issued = node.prefetch(
                {k: ("pf", k, serial) for k in op[1]}, sizes=dict.fromkeys(op[1], 4)
            )
            assert issued == node.stats.prefetches_issued - before <= len(set(op[1]))
            for k in op[1]:
                # White-box peek (no access counted): was this key's value replaced?
                if node._backend.get(k, None) == ("pf", k, serial):
                    written[k] = (("pf", k, serial), 4)
            results.append(issued)
        elif kind == "get_many":
            gets += len(op[1])
            values = node.get_many(op[1]) if batch else [node.get(k) for k in op[1]]
            for k, value in zip(op[1], values, strict=True):
                if value is not None:
                    assert value == written[k][0]
            results.append(values)
        else:
            items = []
            for k, size in op[1]:
                serial += 1
                items.append((k, ("v", k, serial), size))
            if batch:
                node.put_many([(k, v) for k, v, _ in items], sizes=[s for _, _, s in items])
            else:
                for k, v, s in items:
                    node.put(k, v, size=s)
            for k, v, s in items:
                written[k] = (v, s)
        check_invariants(node, written)
    stats = node.stats
    assert stats.hits + stats.misses == gets
    results.append(stats)
    return results


def check_invariants(node: CacheNode, written: dict[Hashable, tuple[object, int]]) -> None:
    resident = [k for k in written if node.contains(k)]
    assert len(node) == len(resident)
    if node.by_bytes:
        assert node.used == sum(written[k][1] for k in resident)
        assert node.used <= node.capacity
    else:
        assert node.used == len(node) <= node.capacity
    stats = node.stats
    assert stats.prefetches_issued == (
        stats.prefetch_used + stats.prefetch_evicted_unused + stats.prefetch_resident_unused
    )
    assert stats.prefetch_resident_unused <= len(node)


@pytest.mark.parametrize("by_bytes", [False, True], ids=["objects", "bytes"])
@pytest.mark.parametrize("policy", POLICY_NAMES)
@settings(max_examples=60, deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_invariants_and_determinism(
    policy: str, by_bytes: bool, ops: list[tuple[Any, ...]]
) -> None:
    first = replay(make_node(policy, by_bytes), ops)
    second = replay(make_node(policy, by_bytes), ops)
    assert first == second


@pytest.mark.parametrize("by_bytes", [False, True], ids=["objects", "bytes"])
@pytest.mark.parametrize("policy", POLICY_NAMES)
@settings(max_examples=40, deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_batches_match_single_calls(
    policy: str, by_bytes: bool, ops: list[tuple[Any, ...]]
) -> None:
    batched = replay(make_node(policy, by_bytes), ops, batch=True)
    single = replay(make_node(policy, by_bytes), ops, batch=False)
    assert batched == single


@pytest.mark.parametrize(
    "sampler_args",
    [("spatial", 0.5), ("spatial", 1.0), ("burst", 0.3)],
    ids=["spatial-0.5", "spatial-1", "burst-0.3"],
)
@pytest.mark.parametrize("policy", POLICY_NAMES)
@settings(max_examples=30, deadline=None)
@given(ops=st.lists(OPS, max_size=40))
def test_sampler_does_not_change_behaviour(
    policy: str, sampler_args: tuple[str, float], ops: list[tuple[Any, ...]]
) -> None:
    mode, rate = sampler_args
    sampler = AccessSampler(rate, mode, window=3, seed=7)  # type: ignore[arg-type]
    plain = replay(make_node(policy, True), ops)
    sampled = replay(make_node(policy, True, sampler), ops)
    assert plain == sampled
