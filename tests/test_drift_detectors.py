"""Unit tests of the drift detectors (ADWIN on hits, KS on reuse / inter-arrival, PSI)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cache_core.replay import lru_hit_stream
from cache_core.synthetic import (
    ZipfPopularity,
    poisson_timestamps,
    scan_workload,
    switching_workload,
)
from cache_core.trace import Trace
from customer_models import CustomerModelError
from customer_models.drift import (
    DETECTOR_NAMES,
    AdwinHitDetector,
    DriftConfig,
    DriftConfigError,
    DriftDetector,
    DriftEvent,
    DriftInputError,
    KSDetector,
    PSIDetector,
    make_detector,
)
from customer_models.drift.key_table import KeyTable
from customer_models.drift.ks import interarrival_bins
from customer_models.drift.psi import psi

#: Small windows so that tests run in well under a second: warm-up of 7k requests.
SMALL = DriftConfig(
    block_size=200,
    recent_blocks=5,
    reference_blocks=50,
    reference_gap_blocks=5,
    warmup_blocks=5,
    min_reference_blocks=20,
    adwin_block=20,
)
SWITCH = 30_000
N = 45_000


Stream = tuple[np.ndarray, np.ndarray]


def _stream(trace: Trace) -> Stream:
    ids = np.asarray(trace.dense_ids, dtype=np.int64)
    return ids, lru_hit_stream(ids, 100)


@pytest.fixture(scope="module")
def switch_to_scan() -> Stream:
    """Zipf over 1,000 keys, then a scan of new keys: every detector's signal changes."""
    scan = scan_workload(N - SWITCH, start=10**9)
    trace = switching_workload(N, SWITCH, ZipfPopularity(1_000, 1.0), scan, seed=3)
    return _stream(trace)


@pytest.fixture(scope="module")
def stationary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    trace = switching_workload(
        120_000, 60_000, ZipfPopularity(1_000, 1.0), ZipfPopularity(1_000, 1.0), seed=11
    )
    ids, hits = _stream(trace)
    stamps = poisson_timestamps(len(trace), 2.0, np.random.default_rng(5))
    return ids, hits, stamps


@pytest.mark.parametrize("name", ["adwin", "ks_reuse", "psi"])
def test_detector_fires_after_switch(name: str, switch_to_scan: Stream) -> None:
    ids, hits = switch_to_scan
    detector = make_detector(name, SMALL)
    events = detector.update_many(ids, hits)
    assert events, f"{name} missed the switch"
    first = events[0]
    assert first.detector == name
    assert SWITCH <= first.request_index < SWITCH + 10_000
    assert detector.last_event == events[-1]


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_detector_quiet_on_stationary_stream(
    name: str, stationary: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    ids, hits, stamps = stationary
    detector = make_detector(name, SMALL)
    assert detector.update_many(ids, hits, stamps) == []
    assert not detector.drift_detected
    assert detector.requests_seen == ids.shape[0]
    if name != "adwin":
        assert math.isfinite(detector.statistic)
        assert detector.statistic < detector.threshold


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_detectors_follow_the_protocol(name: str) -> None:
    detector = make_detector(name, SMALL)
    assert isinstance(detector, DriftDetector)
    assert detector.name == name
    assert detector.requests_seen == 0
    assert math.isnan(detector.statistic)
    assert detector.threshold > 0
    assert detector.last_event is None


def test_interarrival_detector_fires_on_rate_change() -> None:
    rng = np.random.default_rng(2)
    gaps = np.r_[rng.exponential(1.0, SWITCH), rng.exponential(0.01, N - SWITCH)]
    keys = rng.integers(0, 500, N)
    detector = KSDetector(SMALL, "interarrival")
    events = detector.update_many(keys, np.zeros(N, bool), np.cumsum(gaps))
    assert [e.detector for e in events][:1] == ["ks_interarrival"]
    assert SWITCH <= events[0].request_index < SWITCH + 10_000


def test_interarrival_detector_needs_timestamps() -> None:
    detector = KSDetector(SMALL, "interarrival")
    assert detector.update_many(np.arange(20_000), np.zeros(20_000, bool)) == []
    assert detector.tests_run == 0


def test_event_fields(switch_to_scan: Stream) -> None:
    ids, hits = switch_to_scan
    event = KSDetector(SMALL).update_many(ids, hits)[0]
    assert event.threshold == SMALL.ks_threshold
    assert event.statistic > event.threshold
    assert 0 <= float(event.details["p_value"]) < SMALL.test_alpha
    assert int(event.details["reference_windows"]) >= 1
    assert int(event.details["nearest_reference_age"]) >= SMALL.recent_blocks * SMALL.block_size
    assert (event.request_index + 1) % SMALL.block_size == 0
    assert DriftEvent.from_dict(event.to_dict()) == event
    adwin = AdwinHitDetector(SMALL).update_many(ids, hits)[0]
    assert adwin.statistic < -SMALL.adwin_min_effect
    assert float(adwin.details["hit_ratio_before"]) > float(adwin.details["hit_ratio_after"])


def test_detector_rearms_after_event(switch_to_scan: Stream) -> None:
    ids, hits = switch_to_scan
    detector = PSIDetector(SMALL)
    events = detector.update_many(ids, hits)
    # One switch, one event: afterwards the detector warms up on the new workload.
    assert len(events) == 1
    assert not detector.armed or detector.requests_seen - events[0].request_index > (
        SMALL.warmup_requests
    )


def test_update_matches_update_many(switch_to_scan: Stream) -> None:
    ids, hits = switch_to_scan
    one = KSDetector(SMALL)
    indices = []
    for key, hit in zip(ids[:36_000].tolist(), hits[:36_000].tolist(), strict=True):
        one.update(key, bool(hit))
        if one.drift_detected:
            assert one.last_event is not None
            indices.append(one.last_event.request_index)
    batch = KSDetector(SMALL)
    events = batch.update_many(ids[:20_000], hits[:20_000])
    events += batch.update_many(ids[20_000:36_000], hits[20_000:36_000])
    assert indices == [e.request_index for e in events]
    assert indices


def test_reset_forgets_everything(switch_to_scan: Stream) -> None:
    ids, hits = switch_to_scan
    detector = PSIDetector(SMALL)
    first = detector.update_many(ids, hits)
    detector.reset()
    assert detector.requests_seen == 0
    assert detector.last_event is None
    assert detector.update_many(ids, hits) == first


def test_bad_batches_are_refused() -> None:
    detector = KSDetector(SMALL)
    with pytest.raises(DriftInputError, match="one flag per key"):
        detector.update_many(np.arange(5), np.zeros(4, bool))
    with pytest.raises(DriftInputError, match="integers"):
        detector.update_many(np.array([0.5, 1.5]), np.zeros(2, bool))
    with pytest.raises(DriftInputError, match="timestamps"):
        detector.update_many(np.arange(3), np.zeros(3, bool), np.zeros(2))
    with pytest.raises(CustomerModelError):
        detector.update_many(np.zeros((2, 2), dtype=np.int64), np.zeros((2, 2), bool))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("detectors", ("adwin", "nope"), "unknown drift detector"),
        ("detectors", (), "non-empty"),
        ("block_size", 0, "block_size"),
        ("ks_threshold", 1.5, "below 1"),
        ("psi_threshold", -1.0, "positive"),
        ("false_alarm_rate", 0.0, "between 0 and 1"),
        ("min_reference_blocks", 3, "at least recent_blocks"),
        ("reference_blocks", 5, "at least min_reference_blocks"),
        ("key_table_bits", 40, "at most 30"),
    ],
)
def test_config_validation(field: str, value: object, message: str) -> None:
    with pytest.raises(DriftConfigError, match=message):
        DriftConfig(**{field: value})  # type: ignore[arg-type]


def test_config_round_trip_and_derived_values() -> None:
    config = DriftConfig()
    assert DriftConfig.from_dict(config.to_dict()) == config
    assert config.test_alpha == pytest.approx(1e-3)
    assert config.warmup_requests == 120_000
    with pytest.raises(DriftConfigError, match="unknown drift settings"):
        DriftConfig.from_dict({"ks_treshold": 0.2})


def test_key_table_reuse_and_popularity() -> None:
    table = KeyTable(10)
    bins = table.reuse_bins(np.array([7, 8, 7, 7], dtype=np.uint64), 0, cap=64, bins_per_octave=1)
    assert bins.tolist() == [6, 6, 1, 0]
    counted = KeyTable(10, with_counts=True)
    ring = np.zeros(2, dtype=np.uint64)
    classes = counted.popularity_classes(
        np.array([5, 5, 5, 9, 5], dtype=np.uint64), 0, half_life=1e9, n_classes=8, delayed=ring
    )
    # Lag 2: request i sees requests up to i - 2; key 5 had all of them, key 9 none.
    assert classes.tolist() == [0, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="no counts"):
        table.popularity_classes(
            np.zeros(1, np.uint64), 0, half_life=1.0, n_classes=2, delayed=ring
        )


def test_psi_and_interarrival_helpers() -> None:
    same = np.array([0.2, 0.3, 0.5])
    assert float(psi(same, same, 1e-3)) == 0.0
    rows = psi(np.vstack([same, [0.5, 0.3, 0.2]]), same, 1e-3)
    assert rows.shape == (2,)
    assert rows[0] == 0.0 < rows[1]
    bins = interarrival_bins(np.array([np.nan, -1.0, 0.0, 0.5, 1e30]), 2, 3)
    assert bins.tolist() == [-1, 0, 0, 5, 13]
