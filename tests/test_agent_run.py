"""The customer agent in-process: adoption, drift refresh, resume, split mode, metrics."""

from __future__ import annotations

import json
import socket
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import generate_latest

from cache_core.trace import Trace
from federation.client.agent import (
    AgentSettings,
    AgentSummary,
    CustomerAgent,
    RequestBatch,
    TraceReplaySource,
)
from tests.test_agent_support import ScriptedDrift, encoder, loop_trace, train_small


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small(loop_trace(20_000, seed=1), tmp_path_factory.mktemp("m") / "model")


def _settings(state: Path, **kw: Any) -> AgentSettings:
    base: dict[str, Any] = {
        "state_dir": state,
        "cache_size": "0.05",
        "persist_interval": 4096,
        "sample_rate": 0.05,
        "ab_sample_rate": 0.2,
        "ab_min_requests": 500,  # short replays: decide early (the default is 10,000)
        "refit_min_samples": 256,
        "refit_steps": 4,
        "rollback_confirm": 500,
    }
    base.update(kw)
    return AgentSettings(**base)


def _run(
    settings: AgentSettings,
    trace: Trace,
    *,
    champion: str | Path = "none",
    candidates: tuple[Path, ...] = (),
    drift_every: int | None = None,
    max_requests: int | None = None,
    live: bool = False,
) -> AgentSummary:
    source: Any = _LiveSource(trace) if live else TraceReplaySource(trace)
    with CustomerAgent(
        settings,
        source,
        champion=champion,
        candidates=candidates,
        encoder=encoder(),
        drift_monitor=lambda s: None if drift_every is None else ScriptedDrift(drift_every),
    ) as agent:
        return agent.run(max_requests=max_requests)


class _LiveSource:
    """A trace served as a live source: it cannot go back before where it is asked to start."""

    replayable = False

    def __init__(self, trace: Trace) -> None:
        self._inner = TraceReplaySource(trace)
        self.trace = trace

    @property
    def name(self) -> str:
        return self._inner.name

    def batches(self, start: int, batch_size: int) -> Iterator[RequestBatch]:
        return self._inner.batches(start, batch_size)


def _comparable(summary: AgentSummary) -> dict[str, Any]:
    out = summary.to_dict()
    for key in ("state_dir", "resumed_from", "recovery_consistent"):
        out.pop(key)
    out["champion"].pop("directory", None)
    plain: dict[str, Any] = json.loads(json.dumps(out))
    return plain


def test_candidate_is_adopted_and_recorded(tmp_path: Path, model_dir: Path) -> None:
    trace = loop_trace(30_000, seed=2)
    summary = _run(_settings(tmp_path / "s"), trace, candidates=(model_dir,))
    assert summary.requests == len(trace)
    kinds = [d.kind for d in summary.decisions]
    assert kinds == ["adopt"]
    adopt = summary.decisions[0]
    assert adopt.challenger_hit_ratio is not None and adopt.champion_hit_ratio is not None
    assert adopt.challenger_hit_ratio > adopt.champion_hit_ratio
    assert adopt.statistic is not None and adopt.statistic >= 2.99  # log(1 / 0.05)
    assert summary.champion["kind"] == "model"
    directory = Path(summary.champion["directory"])
    assert directory.is_relative_to(tmp_path / "s")
    assert stat.S_IMODE((directory / "base.safetensors").stat().st_mode) == 0o600
    # The learned champion beats plain LRU over the rest of the trace.
    lru = _run(_settings(tmp_path / "lru"), trace)
    assert summary.hit_ratio > lru.hit_ratio + 0.02


def test_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path, model_dir: Path) -> None:
    trace = loop_trace(40_000, seed=3)
    common: dict[str, Any] = {"candidates": (model_dir,), "champion": "markov2", "drift_every": 700}
    whole = _run(_settings(tmp_path / "whole", ab_sample_rate=0.3), trace, **common)
    settings = _settings(tmp_path / "parts", ab_sample_rate=0.3)
    first = _run(settings, trace, max_requests=9000, **common)
    assert first.requests < len(trace)
    second = _run(settings, trace, max_requests=23_000, **common)
    third = _run(settings, trace, **common)
    assert (second.resumed_from, third.resumed_from) == (first.requests, second.requests)
    assert second.recovery_consistent is True and third.recovery_consistent is True
    assert _comparable(third) == _comparable(whole)
    assert whole.decisions and whole.drift_events  # the comparison covers records
    assert [d.kind for d in first.decisions] == [d.kind for d in whole.decisions][
        : len(first.decisions)
    ]


def test_drift_refreshes_the_adapter_and_asks_for_a_round(tmp_path: Path, model_dir: Path) -> None:
    trace = loop_trace(30_000, seed=4)
    settings = _settings(tmp_path / "s")
    summary = _run(settings, trace, champion=model_dir, drift_every=600)
    assert summary.drift_events and summary.wants_round
    refreshed = [r for r in summary.refreshes if r.adapter_id is not None]
    assert refreshed and all(r.steps == 4 and r.samples >= 256 for r in refreshed)
    assert summary.champion["adapter_id"] == refreshed[-1].adapter_id
    with CustomerAgent(
        settings, TraceReplaySource(trace), encoder=encoder(), drift_monitor=lambda s: None
    ) as agent:
        history = agent.store.champion_history()
    assert [h.reason for h in history][:1] == ["initial"]
    assert {h.reason for h in history[1:]} == {"refresh"}
    assert [h.from_index for h in history[1:]] == [r.request_index for r in refreshed]


def test_drift_monitor_detects_a_workload_switch(tmp_path: Path, model_dir: Path) -> None:
    before = loop_trace(30_000, seed=3)
    after = loop_trace(30_000, seed=4, offset=5_000_000, loop_share=0.3)
    trace = Trace("switch", "synthetic", np.concatenate([before.keys, after.keys]))
    settings = _settings(tmp_path / "s", sample_rate=1.0)  # the monitor sees every request
    with CustomerAgent(
        settings, TraceReplaySource(trace), champion=model_dir, encoder=encoder()
    ) as agent:  # the real customer_models.drift monitor
        summary = agent.run()
    first = min(e.request_index for e in summary.drift_events)
    assert 30_000 < first <= 40_000  # no alarm before the switch, one soon after it
    assert summary.wants_round
    assert [r.request_index for r in summary.refreshes if r.adapter_id is not None] == [first]


def test_live_source_resumes_the_test_without_counting_twice(
    tmp_path: Path, model_dir: Path
) -> None:
    trace = loop_trace(30_000, seed=5)
    knobs: dict[str, Any] = {"ab_sample_rate": 0.1, "rollback_confirm": 200}
    # The candidate against itself (plus a small refit): a test that keeps running.
    common: dict[str, Any] = {"champion": model_dir, "candidates": (model_dir,), "live": True}
    settings = _settings(tmp_path / "s", **knobs)
    first = _run(settings, trace, max_requests=12_000, **common)
    assert first.abtest is not None and not first.decisions
    counted_first = first.abtest["requests_used"]
    assert counted_first > 0
    second = _run(settings, trace, **common)
    assert second.resumed_from == first.requests
    assert second.recovery_consistent is None
    assert second.abtest is not None and second.abtest["requests_used"] > counted_first
    # Test state, ghost caches and stream position were restored exactly: the test counted
    # what one uninterrupted live run counts (only the live cache restarted cold).
    whole = _run(_settings(tmp_path / "w", **knobs), trace, **common)
    assert second.abtest == whole.abtest
    assert [d.to_dict() for d in second.decisions] == [d.to_dict() for d in whole.decisions]


def test_split_mode_counts_both_arms(tmp_path: Path, model_dir: Path) -> None:
    trace = loop_trace(30_000, seed=6)
    summary = _run(_settings(tmp_path / "s", ab_mode="split"), trace, candidates=(model_dir,))
    state = summary.abtest if summary.abtest is not None else summary.decisions[0].details
    assert state["method"] == "split-normal-msprt"
    assert state["champion_requests"] > 0 and state["challenger_requests"] > 0
    assert state["champion_requests"] + state["challenger_requests"] == state["requests_used"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_are_exposed(tmp_path: Path, model_dir: Path) -> None:
    trace = loop_trace(12_000, seed=7)
    port = _free_port()
    settings = _settings(tmp_path / "s", metrics_port=port, customer_id="acme", sample_rate=0.5)
    with CustomerAgent(
        settings,
        TraceReplaySource(trace),
        candidates=(model_dir,),
        encoder=encoder(),
        drift_monitor=lambda s: ScriptedDrift(300),
    ) as agent:
        summary = agent.run()
        text = generate_latest(agent.metrics.registry).decode()
        served = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert served.decode() == text or "predis_agent_hit_ratio" in served.decode()
    for name in (
        "predis_agent_hit_ratio",
        "predis_agent_prefetch_precision",
        "predis_agent_drift_events",
        "predis_agent_abtest_active",
        "predis_agent_abtest_statistic",
        "predis_agent_decisions",
        "predis_agent_epsilon_spent",
        "predis_agent_requests",
    ):
        assert f'{name}{{customer="acme"' in text, name
    assert f'predis_agent_requests{{customer="acme"}} {float(summary.requests)}' in text
    assert 'predis_agent_decisions{customer="acme",kind="adopt"} 1.0' in text


@pytest.mark.traces
def test_real_trace_resumes_exactly(tmp_path: Path, trace_root_or_skip: Path) -> None:
    from cache_core import read_trace

    trace = read_trace(trace_root_or_skip / "cache2k/web07.trace.xz", max_requests=30_000)
    common: dict[str, Any] = {"champion": "markov2"}
    whole = _run(_settings(tmp_path / "w", sample_rate=0.05), trace, **common)
    settings = _settings(tmp_path / "p", sample_rate=0.05)
    first = _run(settings, trace, max_requests=11_000, **common)
    second = _run(settings, trace, **common)
    assert first.requests < len(trace) == second.requests == whole.requests
    assert second.recovery_consistent is True
    assert _comparable(second) == _comparable(whole)
    assert 0.0 < whole.hit_ratio < 1.0 and whole.prefetches_per_request > 0
