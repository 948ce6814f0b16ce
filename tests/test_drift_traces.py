"""Drift detection on real bundled traces (default settings): switch found, no false alarm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cache_core import read_trace
from cache_core.replay import lru_hit_stream, resolve_capacity
from customer_models.drift import DriftMonitor


def _ids(root: Path, name: str, limit: int) -> np.ndarray:
    return np.asarray(read_trace(str(root / name), max_requests=limit).dense_ids, dtype=np.int64)


def _hits(ids: np.ndarray) -> np.ndarray:
    return lru_hit_stream(ids, resolve_capacity("0.05", int(ids.max()) + 1))


@pytest.mark.traces
@pytest.mark.slow
def test_switch_between_real_traces_is_found(trace_root_or_skip: Path) -> None:
    first = _ids(trace_root_or_skip, "cache2k/orm-busy.trace.xz", 250_000)
    second = _ids(trace_root_or_skip, "scarab/recs.trace.xz", 100_000)
    ids = np.concatenate([first, second + int(first.max()) + 1])
    events = DriftMonitor().update_many(ids, _hits(ids))
    switch = first.shape[0]
    assert all(e.request_index >= switch for e in events)
    assert events
    assert min(e.request_index for e in events) - switch < 20_000


@pytest.mark.traces
@pytest.mark.slow
def test_no_false_alarm_on_a_real_trace(trace_root_or_skip: Path) -> None:
    ids = _ids(trace_root_or_skip, "arc/P6.lis.zst", 1_000_000)
    monitor = DriftMonitor()
    assert monitor.update_many(ids, _hits(ids)) == []
    assert monitor.requests_seen == 1_000_000
