"""Tests of the access sampler, the key hash, the sample files and the node → sampler feed."""

from __future__ import annotations

import itertools
import threading
from hashlib import blake2b
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache_core import keyhash
from cache_core.errors import InvalidSamplerConfigError, SampleFormatError
from cache_core.node import CacheNode
from cache_core.sample_files import SampleExporter, list_sample_files, read_samples
from cache_core.sampler import SAMPLE_DTYPE, AccessOp, AccessSampler


def counter_clock() -> itertools.count[float]:
    return itertools.count(0.0)


def make(rate: float = 1.0, mode: str = "spatial", **kw: object) -> AccessSampler:
    clock = counter_clock()
    return AccessSampler(rate, mode, clock=lambda: next(clock), **kw)  # type: ignore[arg-type]


# -- ring buffer ---------------------------------------------------------------------------------


def test_ring_overwrites_oldest_and_counts_dropped() -> None:
    s = make(capacity=4)
    for k in range(6):
        s.record(k, AccessOp.GET, 0, k)
    assert len(s) == 4 and s.dropped == 2
    out = s.drain()
    assert out.dtype == SAMPLE_DTYPE
    assert out["key"].tolist() == [2, 3, 4, 5]
    assert out["size"].tolist() == [2, 3, 4, 5]
    assert np.all(np.diff(out["timestamp"]) > 0)
    assert len(s) == 0 and s.drain().shape == (0,)
    assert s.dropped == 2  # cumulative


def test_drain_order_across_wrap_and_batches() -> None:
    s = make(capacity=5)
    s.record(1, AccessOp.PUT, 0)
    s.record_many(np.array([2, 3, 4], dtype=np.uint64), AccessOp.GET, np.array([1, 0, 1]))
    s.record(5, AccessOp.DELETE, 1)
    s.record_many(np.array([6, 7], dtype=np.uint64), AccessOp.PREFETCH, 0, 2**40)
    out = s.drain()
    assert out["key"].tolist() == [3, 4, 5, 6, 7]
    assert out["op"].tolist() == [0, 0, 2, 3, 3]
    assert out["hit"].tolist() == [0, 1, 1, 0, 0]
    assert out["size"].tolist() == [0, 0, 0, 2**32 - 1, 2**32 - 1]  # clipped
    assert s.dropped == 2


def test_batch_larger_than_ring() -> None:
    s = make(capacity=3)
    s.record(100, AccessOp.GET, 0)
    s.record_many(np.arange(10, dtype=np.uint64), AccessOp.GET, 0)
    assert s.drain()["key"].tolist() == [7, 8, 9]
    assert s.dropped == 8


@given(st.lists(st.integers(min_value=1, max_value=9), max_size=30), st.integers(1, 8))
def test_ring_keeps_the_newest(batches: list[int], capacity: int) -> None:
    s = make(capacity=capacity)
    keys = itertools.count()
    written: list[int] = []
    for n in batches:
        chunk = [next(keys) for _ in range(n)]
        written += chunk
        if n == 1:
            s.record(chunk[0], AccessOp.GET, 0)
        else:
            s.record_many(np.array(chunk, dtype=np.uint64), AccessOp.GET, 0)
    assert s.drain()["key"].tolist() == written[max(0, len(written) - capacity) :]
    assert s.dropped == max(0, len(written) - capacity)


def test_concurrent_record_and_drain_loses_nothing() -> None:
    s = AccessSampler(1.0, capacity=1 << 20)
    drained: list[np.ndarray] = []
    stop = threading.Event()

    def drainer() -> None:
        while not stop.is_set():
            drained.append(s.drain())

    t = threading.Thread(target=drainer)
    t.start()
    for k in range(20000):
        s.record(k, AccessOp.GET, 1)
    stop.set()
    t.join()
    drained.append(s.drain())
    keys = np.concatenate(drained)["key"]
    assert keys.tolist() == list(range(20000))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0.0},
        {"rate": 1.5},
        {"rate": 0.1, "mode": "time"},
        {"rate": 0.1, "capacity": 0},
        {"rate": 0.1, "window": 0},
    ],
)
def test_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSamplerConfigError):
        AccessSampler(**kwargs)  # type: ignore[arg-type]


# -- key hash ------------------------------------------------------------------------------------

EDGE_INTS = [0, 1, -1, -2, 2**61 - 2, 2**61 - 1, 2**61, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]


@given(st.lists(st.integers(min_value=-(2**63), max_value=2**64 - 1), max_size=50))
def test_vector_hash_matches_scalar_ints(keys: list[int]) -> None:
    keys = keys + EDGE_INTS
    vec = keyhash.spatial_hashes(keys).tolist()
    assert vec == [keyhash.spatial_hash(k) for k in keys]
    assert vec == [keyhash._portable_hash(k) for k in keys]
    assert keyhash.key_ids(keys).tolist() == [k % 2**64 for k in keys]


def test_hash_of_other_key_types() -> None:
    keys = ["abc", b"abc", bytearray(b"xyz"), np.int64(-5), np.uint64(7), True, 3.5, ("t", 1)]
    vec = keyhash.spatial_hashes(keys).tolist()
    assert vec == [keyhash.spatial_hash(k) for k in keys]
    assert keyhash.spatial_hash(np.int64(-5)) == keyhash.spatial_hash(-5)
    assert keyhash.spatial_hash(2.0) == keyhash.spatial_hash(2) and keyhash.key_id(2.0) == 2
    expected = int.from_bytes(blake2b(b"abc", digest_size=8).digest(), "little")
    assert keyhash.key_id("abc") == expected == keyhash.key_id(b"abc")
    assert keyhash.key_id(-1) == 2**64 - 1
    assert keyhash.key_ids(np.array([-1, 3])).tolist() == [2**64 - 1, 3]
    assert keyhash.NATIVE_TUPLE_HASH  # 64-bit CPython


@pytest.mark.parametrize(
    "keys",
    [range(200_000), range(0, 200_000 << 32, 1 << 32), range(7, 7 + 1000 * 200_000, 1000)],
    ids=["sequential", "stride-2^32", "stride-1000"],
)
@pytest.mark.parametrize("rate", [0.01, 0.1])
def test_spatial_rate_on_structured_keys(keys: range, rate: float) -> None:
    s = AccessSampler(rate, "spatial")
    kept = s.keys_sampled(list(keys)).mean()
    sigma = (rate * (1 - rate) / len(keys)) ** 0.5
    assert abs(kept - rate) < 6 * sigma


# -- node → sampler ------------------------------------------------------------------------------


def test_node_feeds_every_operation() -> None:
    s = make(1.0)
    node = CacheNode("lru", capacity_bytes=100, sampler=s)
    node.get(1)  # miss
    node.put(1, b"abc")
    node.get(1)  # hit
    node.put(1, b"abcd")  # update
    node.prefetch({2: b"xy"})
    node.delete(1)
    node.delete(9)
    node.get_many([2, 3])
    node.put_many([(3, b"q")])
    out = s.drain()
    got = list(
        zip(
            out["key"].tolist(),
            out["op"].tolist(),
            out["hit"].tolist(),
            out["size"].tolist(),
            strict=True,
        )
    )
    g, p, d, f = AccessOp.GET, AccessOp.PUT, AccessOp.DELETE, AccessOp.PREFETCH
    assert got == [
        (1, g, 0, 0),
        (1, p, 0, 3),
        (1, g, 1, 3),
        (1, p, 1, 4),
        (2, f, 0, 2),
        (1, d, 1, 0),
        (9, d, 0, 0),
        (2, g, 1, 2),
        (3, g, 0, 0),
        (3, p, 0, 1),
    ]


def test_non_int_keys_are_hashed_ids() -> None:
    s = make(1.0)
    node = CacheNode("lru", capacity=4, sampler=s)
    node.get("alpha")
    assert s.drain()["key"].tolist() == [keyhash.key_id("alpha")]


@pytest.mark.parametrize("batch", [0, 50, 1500], ids=["single", "small-batch", "vector-batch"])
def test_spatial_keeps_all_or_nothing_per_key(batch: int) -> None:
    rng = np.random.default_rng(1)
    stream = rng.zipf(1.3, size=30_000).tolist()
    s = AccessSampler(0.2, "spatial", capacity=1 << 16)
    node = CacheNode("lru", capacity=200, sampler=s)
    events: dict[int, int] = {}
    if batch:
        for i in range(0, len(stream), batch):
            chunk = stream[i : i + batch]
            values = node.get_many(chunk)
            node.put_many([(k, 1) for k, v in zip(chunk, values, strict=True) if v is None])
    else:
        for k in stream:
            if node.get(k) is None:
                node.put(k, 1)
    out = s.drain()
    assert s.dropped == 0
    for k in stream:
        events[k] = events.get(k, 0) + 1
    recorded_gets: dict[int, int] = {}
    for k, op in zip(out["key"].tolist(), out["op"].tolist(), strict=True):
        if op == AccessOp.GET:
            recorded_gets[k] = recorded_gets.get(k, 0) + 1
    sampled = {k for k in events if s.key_sampled(k)}
    assert set(recorded_gets) == sampled
    assert all(recorded_gets[k] == events[k] for k in sampled)
    assert 0.15 < len(sampled) / len(events) < 0.25
    stats = node.stats
    assert int(np.sum(out["op"] == AccessOp.GET)) <= stats.gets


def burst_runs(recorded: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for k in recorded:
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


@pytest.mark.parametrize("batch", [0, 1, 7, 64])
def test_burst_windows_are_contiguous(batch: int) -> None:
    n, window, rate = 60_000, 25, 0.05
    s = AccessSampler(rate, "burst", window=window, seed=3, capacity=1 << 16)
    node = CacheNode("fifo", capacity=10, sampler=s)
    keys = list(range(n))  # every request a distinct key: request i is key i
    if batch:
        for i in range(0, n, batch):
            node.get_many(keys[i : i + batch])
    else:
        for k in keys:
            node.get(k)
    recorded = s.drain()["key"].tolist()
    runs = burst_runs(recorded)
    assert all(end - start == window for start, end in runs[:-1])
    assert 0 < runs[-1][1] - runs[-1][0] <= window
    assert abs(len(recorded) / n - rate) < 0.3 * rate
    if batch:  # same seed: the same accesses as single calls
        s2 = AccessSampler(rate, "burst", window=window, seed=3, capacity=1 << 16)
        node2 = CacheNode("fifo", capacity=10, sampler=s2)
        for k in keys:
            node2.get(k)
        assert s2.drain()["key"].tolist() == recorded


def test_burst_covers_puts_and_hits() -> None:
    s = make(1.0, "burst", window=4)
    node = CacheNode("lru", capacity=4, sampler=s)
    node.put(1, "a")
    node.get(1)
    node.get(2)
    node.delete(1)
    out = s.drain()
    assert out["op"].tolist() == [AccessOp.PUT, AccessOp.GET, AccessOp.GET, AccessOp.DELETE]
    assert out["hit"].tolist() == [0, 1, 0, 1]


# -- files ---------------------------------------------------------------------------------------


def test_export_and_read_round_trip(tmp_path: Path) -> None:
    s = make(1.0, capacity=16)
    exporter = SampleExporter(tmp_path / "out")
    assert exporter.export(s) is None
    for k in range(5):
        s.record(k, AccessOp.GET, k % 2, k)
    first = exporter.export(s)
    s.record(99, AccessOp.PUT, 0)
    second = exporter.export(s)
    assert first is not None and second is not None
    assert [p.name for p in list_sample_files(tmp_path / "out")] == [
        "samples-00000000.npy",
        "samples-00000001.npy",
    ]
    data = read_samples(tmp_path / "out")
    assert data.dtype == SAMPLE_DTYPE
    assert data["key"].tolist() == [0, 1, 2, 3, 4, 99]
    assert not list((tmp_path / "out").glob("*.tmp"))
    # A new exporter continues the numbering.
    s.record(7, AccessOp.GET, 1)
    third = SampleExporter(tmp_path / "out").export(s)
    assert third is not None and third.name == "samples-00000002.npy"
    (tmp_path / "empty").mkdir()
    assert read_samples(tmp_path / "empty").shape == (0,)


def test_reader_rejects_bad_files(tmp_path: Path) -> None:
    np.save(tmp_path / "samples-00000000.npy", np.array([{"evil": 1}], dtype=object))
    with pytest.raises(SampleFormatError):
        read_samples(tmp_path)
    (tmp_path / "samples-00000000.npy").unlink()
    np.save(tmp_path / "samples-00000000.npy", np.zeros(3, dtype=np.float64))
    with pytest.raises(SampleFormatError):
        read_samples(tmp_path)
    (tmp_path / "samples-00000000.npy").write_bytes(b"garbage")
    with pytest.raises(SampleFormatError):
        read_samples(tmp_path)
    with pytest.raises(SampleFormatError):
        SampleExporter(tmp_path / "x").write(np.zeros(2))  # type: ignore[arg-type]


def test_large_batches_use_the_same_decisions() -> None:
    s = AccessSampler(0.3, "spatial", capacity=1 << 16)
    node = CacheNode("lru", capacity=5000, sampler=s)
    keys = [k * 7919 - 3000 for k in range(3000)]  # negative and positive ints
    node.get_many(keys)  # 3000 misses: vectorised decision
    node.put_many([(k, 1) for k in reversed(keys)])  # not the missed order: decided again
    node.get_many(keys)  # hits: flags
    out = s.drain()
    expected = {keyhash.key_id(k) for k in keys if s.key_sampled(k)}
    for op in (AccessOp.GET, AccessOp.PUT):
        rows = out[out["op"] == op]
        assert set(rows["key"].tolist()) == expected
    assert len(out) == 3 * len(expected)
