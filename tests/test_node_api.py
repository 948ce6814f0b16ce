"""Unit tests of CacheNode's API, errors, prefetch accounting and backend protocol."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pytest

from cache_core.backends import DictBackend, StorageBackend
from cache_core.errors import (
    CacheCoreError,
    InvalidCapacityError,
    InvalidObjectSizeError,
    MissingLoaderError,
    NodeConfigError,
    ObjectTooLargeError,
    UnknownPolicyError,
)
from cache_core.node import CacheNode
from cache_core.policies import POLICIES, LRUPolicy
from cache_core.stats import CacheStats


def test_dict_backend_satisfies_protocol() -> None:
    backend = DictBackend()
    assert isinstance(backend, StorageBackend)
    backend.set("a", 1)
    backend.set_many([("b", 2), ("c", 3)])
    assert backend.get_many(["a", "x", "c"], None) == [1, None, 3]
    assert backend.pop("a", None) == 1
    assert len(backend) == 2 and "b" in backend
    backend.clear()
    assert len(backend) == 0


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_name_builds(policy: str) -> None:
    node = CacheNode(policy, capacity=2)
    node.put(1, "a")
    assert node.get(1) == "a"
    assert node.policy.name == policy


def test_lru_hits_misses_and_eviction() -> None:
    node = CacheNode("lru", capacity=2)
    assert node.get(1) is None
    node.put(1, "one")
    node.put(2, "two")
    assert node.get(1) == "one"
    node.put(3, "three")  # evicts 2 (LRU)
    assert not node.contains(2) and 3 in node and len(node) == 2
    assert node.get(2, "dflt") == "dflt"
    stats = node.stats
    assert (stats.hits, stats.misses, stats.puts, stats.evictions) == (1, 2, 3, 1)
    assert stats.gets == 3 and stats.hit_ratio == pytest.approx(1 / 3)


def test_none_values_are_cached() -> None:
    node = CacheNode("fifo", capacity=2)
    node.put("k", None)
    assert node.get("k", "missing") is None
    assert node.stats.hits == 1


def test_delete() -> None:
    node = CacheNode("sieve", capacity=3)
    node.put("a", 1)
    assert node.delete("a") is True
    assert node.delete("a") is False
    assert node.get("a") is None and len(node) == 0 and node.used == 0
    assert node.stats.deletes == 2


def test_byte_capacity_and_sizes() -> None:
    node = CacheNode("lru", capacity_bytes=10)
    node.put("a", b"12345")
    node.put("b", bytearray(4))
    node.put("c", np.zeros(1, dtype=np.uint8))  # nbytes
    assert node.used == 10 and node.by_bytes and node.capacity == 10
    node.put("d", "not bytes", size=3)  # evicts "a"
    assert not node.contains("a") and node.used == 8
    node.put("b", b"1")  # shrink in place
    assert node.used == 5 and node.get("b") == b"1"


def test_size_errors() -> None:
    node = CacheNode("lru", capacity_bytes=10)
    with pytest.raises(ObjectTooLargeError):
        node.put("a", b"x" * 11)
    with pytest.raises(InvalidObjectSizeError):
        node.put("a", b"x", size=-1)
    with pytest.raises(InvalidObjectSizeError):
        node.put("a", object())
    with pytest.raises(InvalidObjectSizeError):
        node.put("a", b"x", size=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidObjectSizeError):
        CacheNode("lru", capacity=3).put("a", 1, size=-2)
    assert len(node) == 0 and node.stats.puts == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"capacity": 1, "capacity_bytes": 1},
        {"capacity": 0},
        {"capacity_bytes": -4},
        {"capacity": 2.5},
        {"capacity": True},
    ],
)
def test_bad_capacity(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidCapacityError):
        CacheNode("lru", **kwargs)  # type: ignore[arg-type]


def test_policy_instance_and_config_errors() -> None:
    node = CacheNode(LRUPolicy(4), capacity=4)
    node.put(1, 1)
    assert node.capacity == 4
    with pytest.raises(InvalidCapacityError):
        CacheNode(LRUPolicy(4), capacity=5)
    used = LRUPolicy(4)
    used.insert("x")
    with pytest.raises(NodeConfigError):
        CacheNode(used, capacity=4)
    backend = DictBackend()
    backend.set("x", 1)
    with pytest.raises(NodeConfigError):
        CacheNode("lru", capacity=4, backend=backend)
    with pytest.raises(UnknownPolicyError):
        CacheNode("nope", capacity=4)
    assert issubclass(NodeConfigError, CacheCoreError)


def test_prefetch_accounting() -> None:
    node = CacheNode("fifo", capacity=3)
    node.put(1, "one")
    assert node.prefetch({1: "x", 2: "two", 3: "three"}) == 2  # 1 is resident: not issued
    assert node.get(1) == "one"  # prefetch did not overwrite
    assert node.get(2) == "two"
    assert node.get(2) == "two"  # used counted once
    node.put(4, "four")  # FIFO evicts 1
    node.put(5, "five")  # evicts 2 (used)
    node.put(6, "six")  # evicts 3 (unused)
    stats = node.stats
    assert stats.prefetches_issued == 2
    assert stats.prefetch_used == 1 and stats.prefetch_evicted_unused == 1
    assert stats.prefetch_resident_unused == 0
    assert stats.prefetch_precision == 0.5


def test_prefetch_overwritten_or_deleted_counts_unused() -> None:
    node = CacheNode("lru", capacity=4)
    node.prefetch({"a": 1, "b": 2, "c": 3})
    node.put("a", 10)
    node.delete("b")
    stats = node.stats
    assert (stats.prefetch_evicted_unused, stats.prefetch_resident_unused) == (2, 1)
    assert node.get("a") == 10


def test_prefetch_with_loader_and_get_or_load() -> None:
    store = {k: f"v{k}" for k in range(10)}
    calls: list[Hashable] = []

    def loader(key: Hashable) -> object:
        calls.append(key)
        return store[key]  # type: ignore[index]

    node = CacheNode("arc", capacity=5, loader=loader)
    node.put(0, "v0")
    assert node.prefetch([0, 1, 2, 99]) == 2  # 0 resident (not loaded), 99 absent in store
    assert calls == [1, 2, 99]
    assert node.get_or_load(1) == "v1" and node.get_or_load(7) == "v7"
    assert node.contains(7) and node.stats.prefetch_used == 1
    with pytest.raises(KeyError):
        node.get_or_load(123)
    with pytest.raises(MissingLoaderError):
        CacheNode("lru", capacity=2).prefetch([1])
    with pytest.raises(MissingLoaderError):
        CacheNode("lru", capacity=2).get_or_load(1)


def test_prefetch_skips_too_large_objects() -> None:
    node = CacheNode("lru", capacity_bytes=8)
    assert node.prefetch({"big": b"x" * 9, "ok": b"x" * 8}) == 1
    assert node.contains("ok") and not node.contains("big")


def test_batches() -> None:
    node = CacheNode("lru", capacity=3)
    node.put_many({1: "a", 2: "b"})
    assert node.get_many([1, 3, 2], default=0) == ["a", 0, "b"]
    node.put_many([(3, "c"), (4, "d")])
    assert node.get_many(iter([1, 2, 3, 4])) == [None, "b", "c", "d"]
    stats = node.stats
    assert (stats.hits, stats.misses, stats.puts) == (5, 2, 4)
    with pytest.raises(InvalidObjectSizeError):
        node.put_many([(1, "a")], sizes=[1, 2])


def test_stats_snapshot_is_read_only() -> None:
    node = CacheNode("lru", capacity=2)
    snap = node.stats
    node.put(1, 1)
    assert snap.puts == 0 and node.stats.puts == 1
    with pytest.raises(AttributeError):
        snap.hits = 3  # type: ignore[misc]
    assert CacheStats().hit_ratio == 0.0 and CacheStats().prefetch_precision == 0.0
