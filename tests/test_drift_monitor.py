"""Tests of the drift monitor: combined detectors, re-arming, event log and persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cache_core.replay import lru_hit_stream
from cache_core.synthetic import ZipfPopularity, scan_workload, switching_workload
from customer_models.drift import (
    DETECTOR_NAMES,
    DriftConfig,
    DriftInputError,
    DriftMonitor,
)

Stream = tuple[np.ndarray, np.ndarray, list[int]]

SMALL = DriftConfig(
    block_size=200,
    recent_blocks=5,
    reference_blocks=50,
    reference_gap_blocks=5,
    warmup_blocks=5,
    min_reference_blocks=20,
    adwin_block=20,
)


@pytest.fixture(scope="module")
def two_switches() -> Stream:
    """Zipf(1k) -> a scan of new keys -> Zipf over another 1k keys, 30k requests each."""
    first = switching_workload(
        60_000, 30_000, ZipfPopularity(1_000, 1.0), scan_workload(30_000, start=10**9), seed=1
    )
    second = switching_workload(
        30_000, 0, ZipfPopularity(1_000, 1.0), ZipfPopularity(1_000, 1.0, key_offset=10**12), seed=2
    )
    keys = np.concatenate([first.keys, second.keys]).astype(np.int64)
    _, ids = np.unique(keys, return_inverse=True)
    return keys, lru_hit_stream(ids.reshape(-1), 100), [30_000, 60_000]


def _alarms(monitor: DriftMonitor) -> list[int]:
    return sorted({e.request_index for e in monitor.events})


def test_one_alarm_per_switch(two_switches: Stream) -> None:
    keys, hits, switches = two_switches
    monitor = DriftMonitor(SMALL)
    events = monitor.update_many(keys, hits)
    assert events == list(monitor.events)
    alarms = _alarms(monitor)
    # Each switch is found within 10k requests, and re-arming keeps it to one alarm.
    assert len(alarms) == 2, alarms
    for alarm, switch in zip(alarms, switches, strict=True):
        assert switch <= alarm < switch + 10_000
    assert monitor.last_alarm_index == alarms[-1]
    assert {e.detector for e in events} <= set(DETECTOR_NAMES)
    assert monitor.requests_seen == keys.shape[0]


def test_update_one_by_one_matches_batches(two_switches: Stream) -> None:
    keys, hits, _ = two_switches
    single = DriftMonitor(SMALL)
    for key, hit in zip(keys[:40_000].tolist(), hits[:40_000].tolist(), strict=True):
        single.update(key, bool(hit))
    batched = DriftMonitor(SMALL)
    for start in range(0, 40_000, 7_777):
        stop = min(start + 7_777, 40_000)
        batched.update_many(keys[start:stop], hits[start:stop])
    assert [(e.request_index, e.detector) for e in single.events] == [
        (e.request_index, e.detector) for e in batched.events
    ]
    assert single.events


def test_statistics_and_flags(two_switches: Stream) -> None:
    keys, hits, _ = two_switches
    monitor = DriftMonitor(SMALL)
    monitor.update_many(keys[:20_000], hits[:20_000])
    stats = monitor.statistics()
    assert list(stats) == list(SMALL.detectors)
    assert stats["ks_reuse"] < SMALL.ks_threshold
    assert not monitor.drift_detected
    monitor.update_many(keys[20_000:40_000], hits[20_000:40_000])
    assert monitor.drift_detected


def test_state_round_trip_restarts_with_warm_up(two_switches: Stream) -> None:
    keys, hits, switches = two_switches
    monitor = DriftMonitor(SMALL)
    monitor.update_many(keys[:45_000], hits[:45_000])
    state = json.loads(json.dumps(monitor.state_dict()))
    restored = DriftMonitor(SMALL)
    restored.load_state_dict(state)
    assert restored.events == monitor.events
    assert restored.requests_seen == 45_000
    restored.update_many(keys[45_000:], hits[45_000:])
    # Indices continue from the saved position; the second switch is still found.
    late = [e.request_index for e in restored.events[len(monitor.events) :]]
    assert late
    assert all(switches[1] <= i < switches[1] + 10_000 for i in late)


def test_load_state_refuses_other_settings_and_garbage() -> None:
    state = DriftMonitor(SMALL).state_dict()
    with pytest.raises(DriftInputError, match="different settings"):
        DriftMonitor().load_state_dict(state)
    with pytest.raises(DriftInputError, match="version"):
        DriftMonitor(SMALL).load_state_dict({**state, "version": 99})
    with pytest.raises(DriftInputError, match="malformed"):
        DriftMonitor(SMALL).load_state_dict({"version": 1})


def test_reset_clears_the_log(two_switches: Stream) -> None:
    keys, hits, _ = two_switches
    monitor = DriftMonitor(SMALL)
    monitor.update_many(keys, hits)
    monitor.reset()
    assert monitor.events == ()
    assert monitor.requests_seen == 0
    assert monitor.last_alarm_index is None


def test_subset_of_detectors() -> None:
    monitor = DriftMonitor(DriftConfig(detectors=("ks_reuse",)))
    assert [d.name for d in monitor.detectors] == ["ks_reuse"]
