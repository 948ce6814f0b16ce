"""Degradation monitor: rollback after a switch, none on a stationary stream, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cache_core.synthetic import loop_workload, zipf_workload
from cache_core.trace import Trace
from cache_core.traces import read_trace
from customer_models.abtest import (
    AbTestStateError,
    DegradationMonitor,
    InvalidAbTestConfigError,
    prefetcher_outcomes,
)

#: Requests after the switch within which the rollback must come (detection + confirmation).
BOUND = 10_000


def bits(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return (rng.random(n) < rate).astype(np.uint8)


def test_rolls_back_within_a_bound_after_a_drop() -> None:
    delays = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        monitor = DegradationMonitor(bits(rng, 20_000, 0.70))
        assert monitor.update(bits(rng, 30_000, 0.70)) is None
        check = monitor.update(bits(rng, 30_000, 0.60))
        assert check is not None and check.rollback
        assert check.window_hit_ratio < monitor.baseline_hit_ratio - monitor.tolerance
        assert check.drop == pytest.approx(monitor.baseline_hit_ratio - check.window_hit_ratio)
        delays.append(check.request_index - 30_000)
        assert monitor.rolled_back and monitor.rollback == check
        assert monitor.requests == check.request_index + 1  # the rest was not counted
        assert monitor.update(bits(rng, 100, 0.0)) is None
    assert min(delays) >= 0 and max(delays) <= BOUND


def test_worse_from_the_first_request_is_rolled_back() -> None:
    rng = np.random.default_rng(1)
    monitor = DegradationMonitor(bits(rng, 20_000, 0.65))
    check = monitor.update(bits(rng, 20_000, 0.55))
    assert check is not None and check.request_index < BOUND


def test_no_rollback_on_a_stationary_or_better_stream() -> None:
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        monitor = DegradationMonitor(bits(rng, 20_000, 0.6))
        assert monitor.update(bits(rng, 100_000, 0.6)) is None
        assert not monitor.rolled_back
    rng = np.random.default_rng(5)
    better = DegradationMonitor(bits(rng, 20_000, 0.6))
    assert better.update(bits(rng, 50_000, 0.7)) is None
    assert better.checks and not any(c.rollback for c in better.checks)
    assert better.checks[0].window_hit_ratio > better.baseline_hit_ratio


def test_state_round_trip_resumes_identically() -> None:
    rng = np.random.default_rng(3)
    baseline = bits(rng, 10_000, 0.7)
    stream = np.concatenate([bits(rng, 25_000, 0.7), bits(rng, 25_000, 0.55)])
    whole = DegradationMonitor(baseline)
    expected = whole.update(stream)
    assert expected is not None
    monitor = DegradationMonitor(baseline)
    got = None
    for start in range(0, stream.size, 7_777):
        monitor = DegradationMonitor.from_state_dict(json.loads(json.dumps(monitor.state_dict())))
        got = monitor.update(stream[start : start + 7_777])
        if got is not None:
            break
    assert got == expected
    assert monitor.checks == whole.checks


def test_bad_inputs_refused() -> None:
    with pytest.raises(InvalidAbTestConfigError, match="at least"):
        DegradationMonitor([1, 0, 1])
    with pytest.raises(InvalidAbTestConfigError, match="tolerance"):
        DegradationMonitor(np.ones(5_000, dtype=np.uint8), tolerance=2.0)
    state = DegradationMonitor(np.ones(5_000, dtype=np.uint8)).state_dict()
    state["adwin"] = "not base64!"
    with pytest.raises(AbTestStateError, match="corrupt"):
        DegradationMonitor.from_state_dict(state)


def _switched(first: Trace, second: Trace) -> tuple[Trace, int]:
    """``first`` then ``second`` (keys moved apart), and the index of the switch."""
    keys = np.concatenate([first.keys, second.keys + np.uint64(1 << 40)])
    return Trace(f"{first.name}+{second.name}", "synthetic", keys), len(first)


def _rollback_after_switch(trace: Trace, switch: int, adopt_at: int, capacity: int) -> int:
    """Adopt markov2 at ``adopt_at`` (baseline: markov before), switch the trace, and
    return the requests from the switch to the rollback."""
    adopted = prefetcher_outcomes(trace, capacity, "markov2", train_fraction=0.0).hits
    champion = prefetcher_outcomes(trace, capacity, "markov", train_fraction=0.0).hits
    monitor = DegradationMonitor(champion[adopt_at - 20_000 : adopt_at])
    check = None
    for start in range(adopt_at, len(trace), 4_096):  # the agent's batches
        check = monitor.update(adopted[start : start + 4_096])
        if check is not None:
            break
    assert check is not None, "no rollback after the switch"
    index = adopt_at + check.request_index
    assert index >= switch, f"rolled back before the switch, at {index}"
    return index - switch


def test_rollback_after_a_workload_switch_synthetic() -> None:
    # A loop markov2 predicts perfectly, then an unpredictable Zipf workload.
    trace, switch = _switched(
        loop_workload(120_000, 3_000), zipf_workload(80_000, 50_000, 0.7, seed=4)
    )
    assert _rollback_after_switch(trace, switch, adopt_at=60_000, capacity=1_000) <= BOUND


@pytest.mark.traces
def test_rollback_after_switching_real_traces(trace_root_or_skip: Path) -> None:
    # orm-busy (markov2 does well) then web07 (markov2 below the old level): back to back.
    first = read_trace(str(trace_root_or_skip / "cache2k/orm-busy.trace.xz"), max_requests=200_000)
    second = read_trace(str(trace_root_or_skip / "cache2k/web07.trace.xz"))
    trace, switch = _switched(first, second)
    capacity = max(1, trace.unique_objects // 100)
    assert _rollback_after_switch(trace, switch, adopt_at=100_000, capacity=capacity) <= 20_000
