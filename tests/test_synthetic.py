"""Synthetic workloads are reproducible and have the documented shape."""

from __future__ import annotations

import numpy as np
import pytest

from cache_core.synthetic import (
    SYNTHETIC_FORMAT,
    SwitchingTrace,
    ZipfPopularity,
    loop_workload,
    mixture_workload,
    scan_workload,
    switching_workload,
    zipf_workload,
)
from cache_core.trace import Trace


def test_zipf_is_seeded_and_skewed() -> None:
    a = zipf_workload(20_000, 1_000, 1.0, seed=3)
    b = zipf_workload(20_000, 1_000, 1.0, seed=3)
    c = zipf_workload(20_000, 1_000, 1.0, seed=4)
    assert isinstance(a, Trace) and a.format == SYNTHETIC_FORMAT
    assert a.keys.dtype == np.uint64
    np.testing.assert_array_equal(a.keys, b.keys)
    assert not np.array_equal(a.keys, c.keys)
    assert a.keys.max() < 1_000
    counts = np.bincount(a.keys.astype(np.int64), minlength=1_000)
    assert counts[0] > counts[1] > counts[10] > counts[500]
    # Rank 1 of Zipf(1.0) over 1000 objects has probability 1 / H_1000 ~ 0.1336.
    assert abs(counts[0] / 20_000 - 0.1336) < 0.01
    assert a.timestamps is None and a.sizes is None


def test_zipf_alpha_zero_is_uniform_and_offset() -> None:
    t = zipf_workload(50_000, 10, 0.0, seed=1, key_offset=100)
    counts = np.bincount(t.keys.astype(np.int64) - 100, minlength=10)
    assert counts.min() > 4_500 and counts.max() < 5_500


def test_timestamps_are_monotone_poisson() -> None:
    t = zipf_workload(10_000, 50, 0.8, seed=2, arrival_rate=4.0)
    assert t.timestamps is not None and t.timestamps.dtype == np.float64
    assert np.all(np.diff(t.timestamps) >= 0) and t.timestamps[0] > 0
    assert abs(np.diff(t.timestamps).mean() - 0.25) < 0.02
    # Keys do not depend on whether timestamps were asked for.
    np.testing.assert_array_equal(t.keys, zipf_workload(10_000, 50, 0.8, seed=2).keys)


def test_scan_and_loop() -> None:
    assert scan_workload(5, start=10).keys.tolist() == [10, 11, 12, 13, 14]
    assert loop_workload(7, 3, start=5).keys.tolist() == [5, 6, 7, 5, 6, 7, 5]
    stamped = loop_workload(100, 10, arrival_rate=1.0, seed=9)
    assert stamped.timestamps is not None and len(stamped.timestamps) == 100
    assert len(scan_workload(0)) == 0


def test_switching_workload() -> None:
    before = ZipfPopularity(100, 1.2)
    after = ZipfPopularity(100, 1.2, key_offset=1_000)
    t = switching_workload(10_000, 3_000, before, after, seed=5)
    assert isinstance(t, SwitchingTrace) and isinstance(t, Trace)
    assert t.switch_at == 3_000 and len(t) == 10_000
    assert t.keys[:3_000].max() < 100 and t.keys[3_000:].min() >= 1_000
    again = switching_workload(10_000, 3_000, before, after, seed=5)
    np.testing.assert_array_equal(t.keys, again.keys)
    # Same keys, permuted popularity: the hot key changes at the switch.
    shifted = ZipfPopularity(100, 1.2, permutation_seed=11)
    s = switching_workload(20_000, 10_000, before, shifted, seed=5)
    hot_before = np.bincount(s.keys[:10_000].astype(np.int64)).argmax()
    hot_after = np.bincount(s.keys[10_000:].astype(np.int64)).argmax()
    assert hot_before == 0 and hot_after == shifted.keys_by_rank()[0] != 0
    # Traces as sources are replayed in order (cycling).
    loop = switching_workload(8, 3, scan_workload(2, start=50), loop_workload(4, 2), seed=0)
    assert loop.keys.tolist() == [50, 51, 50, 0, 1, 0, 1, 0]


def test_mixture_workload() -> None:
    hot = ZipfPopularity(10, 1.0)
    t = mixture_workload(10_000, [hot, scan_workload(10_000, start=10**6)], [0.75, 0.25], seed=3)
    scans = t.keys[t.keys >= 10**6]
    assert 2_200 < len(scans) < 2_800
    assert np.all(np.diff(scans.astype(np.int64)) == 1)  # the scan stays in order
    again = mixture_workload(10_000, [hot, scan_workload(10_000, start=10**6)], [3, 1], seed=3)
    np.testing.assert_array_equal(t.keys, again.keys)


@pytest.mark.parametrize(
    "call",
    [
        lambda: zipf_workload(-1, 10, 1.0),
        lambda: zipf_workload(10, 0, 1.0),
        lambda: zipf_workload(10, 10, -0.5),
        lambda: loop_workload(10, 0),
        lambda: switching_workload(10, 11, ZipfPopularity(2, 1), ZipfPopularity(2, 1)),
        lambda: mixture_workload(10, [ZipfPopularity(2, 1)], [1, 2]),
        lambda: mixture_workload(10, [ZipfPopularity(2, 1)], [-1]),
        lambda: zipf_workload(10, 10, 1.0, arrival_rate=0.0),
    ],
)
def test_invalid_arguments(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
