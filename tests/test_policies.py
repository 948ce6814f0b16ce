"""Reference eviction policies: registry, protocol behaviour and invariants."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_core.errors import InvalidCapacityError, UnknownPolicyError
from cache_core.policies import (
    POLICIES,
    ARCPolicy,
    EvictionPolicy,
    FIFOPolicy,
    LRUPolicy,
    S3FIFOPolicy,
    SievePolicy,
    make_policy,
)

NAMES = sorted(POLICIES)


def drive(policy: EvictionPolicy, keys: list[int], sizes: list[int] | None = None) -> list[bool]:
    """Feed requests the way a cache node does; return the hit sequence."""
    out = []
    for i, key in enumerate(keys):
        if key in policy:
            policy.hit(key)
            out.append(True)
        else:
            policy.insert(key, 1 if sizes is None else sizes[i])
            out.append(False)
    return out


def test_registry_names() -> None:
    assert NAMES == ["arc", "fifo", "lru", "s3fifo", "sieve"]
    assert POLICIES["lru"] is LRUPolicy
    assert POLICIES["fifo"] is FIFOPolicy
    assert POLICIES["arc"] is ARCPolicy
    assert POLICIES["s3fifo"] is S3FIFOPolicy
    assert POLICIES["sieve"] is SievePolicy
    for name, cls in POLICIES.items():
        assert cls.name == name


def test_make_policy_case_insensitive() -> None:
    policy = make_policy(" LRU ", 3)
    assert isinstance(policy, LRUPolicy)
    assert policy.capacity == 3
    assert len(policy) == 0
    assert policy.used == 0


def test_make_policy_unknown_lists_valid_names() -> None:
    with pytest.raises(UnknownPolicyError) as info:
        make_policy("lfu", 10)
    message = str(info.value)
    assert "'lfu'" in message
    for name in NAMES:
        assert name in message


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("capacity", [0, -1, 2.5])
def test_invalid_capacity(name: str, capacity: float) -> None:
    with pytest.raises(InvalidCapacityError):
        make_policy(name, capacity)  # type: ignore[arg-type]


def test_lru_order() -> None:
    policy = LRUPolicy(3)
    for key in "abc":
        assert policy.insert(key) == []
    policy.hit("a")
    assert policy.insert("d") == ["b"]
    assert policy.insert("e") == ["c"]
    assert set("ade") == {k for k in "abcde" if k in policy}


def test_fifo_ignores_hits() -> None:
    policy = FIFOPolicy(3)
    for key in "abc":
        policy.insert(key)
    policy.hit("a")
    assert policy.insert("d") == ["a"]


def test_sieve_spares_visited() -> None:
    policy = SievePolicy(3)
    for key in "abc":
        policy.insert(key)
    policy.hit("a")
    # The hand clears a's bit and evicts b; it then rests on c.
    assert policy.insert("d") == ["b"]
    assert policy.insert("e") == ["c"]
    # The hand keeps moving towards the head: a (behind it) survives this round.
    assert policy.insert("f") == ["d"]
    assert "a" in policy


def test_arc_ghost_hit_enters_t2_and_adapts() -> None:
    policy = ARCPolicy(2)
    drive(policy, [1, 1, 2, 3])  # 1 is in T2; 3's miss demotes 2 from T1 to the B1 ghost
    assert 2 not in policy
    assert policy.target_t1 == 0.0
    assert policy.insert(2) == [1]  # B1 ghost hit: p grows to 1, REPLACE demotes T2's LRU
    assert policy.target_t1 == 1.0
    assert 2 in policy
    assert 3 in policy
    assert len(policy) == 2


def test_s3fifo_one_hit_wonders_leave_through_small() -> None:
    policy = S3FIFOPolicy(20)
    drive(policy, list(range(20)))  # fills small (2), then main until the first eviction
    evicted = policy.insert(100)
    assert evicted and evicted[0] not in policy
    # A key recently evicted from small goes to main on its next request (ghost hit).
    policy.insert(evicted[0])
    assert evicted[0] in policy


@pytest.mark.parametrize("name", NAMES)
def test_oversized_object_not_admitted(name: str) -> None:
    policy = make_policy(name, 10)
    policy.insert("small", 1)
    assert policy.insert("huge", 11) == []
    assert "huge" not in policy
    assert "small" in policy
    assert policy.used == 1


@pytest.mark.parametrize("name", NAMES)
def test_remove(name: str) -> None:
    policy = make_policy(name, 30)
    drive(policy, list(range(10)))
    policy.remove(3)
    assert 3 not in policy
    assert len(policy) == 9
    assert policy.used == 9
    # Removed keys leave no ghost: a re-insert is a plain miss and the cache still works.
    drive(policy, list(range(40)))
    assert policy.used <= 30


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 40),
    requests=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 6)), max_size=400),
)
def test_invariants(name: str, capacity: int, requests: list[tuple[int, int]]) -> None:
    policy = make_policy(name, capacity)
    sizes: dict[Hashable, int] = {}
    for key, size in requests:
        size = sizes.setdefault(key, size)
        if key in policy:
            policy.hit(key)
        else:
            evicted = policy.insert(key, size)
            assert len(evicted) == len(set(evicted))
            assert key not in evicted
            for victim in evicted:
                assert victim not in policy
            if size <= capacity and not isinstance(policy, S3FIFOPolicy):
                assert key in policy
        resident = [k for k in sizes if k in policy]
        assert len(resident) == len(policy)
        assert policy.used == sum(sizes[k] for k in resident)
        assert policy.used <= capacity


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    keys = [(i * 7919) % 53 for i in range(2000)]
    assert drive(make_policy(name, 17), keys) == drive(make_policy(name, 17), keys)
