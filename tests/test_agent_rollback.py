"""Rollback integration: adopt a challenger, switch the traffic, roll back within a bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.client.agent import AgentSettings, CustomerAgent, TraceReplaySource
from tests.test_agent_support import encoder, loop_trace, switched_trace, train_small

SWITCH_AT = 30_000
CONFIRM = 1000
BATCH = 1024


@pytest.mark.parametrize("sample_rate", [1.0, 0.2])
def test_adopted_model_is_rolled_back_after_the_traffic_switches(
    tmp_path: Path, sample_rate: float
) -> None:
    model = train_small(loop_trace(20_000, seed=1), tmp_path / "model")
    trace = switched_trace(SWITCH_AT, 30_000, seed=2)
    settings = AgentSettings(
        state_dir=tmp_path / "s",
        cache_size="150",  # half the loop: plain LRU misses it, the model's prefetches hit
        persist_interval=4096,
        ab_sample_rate=sample_rate,
        ab_min_requests=500,  # a short replay: decide early (the default is 10,000)
        rollback_confirm=CONFIRM,
        batch_size=BATCH,
    )
    # The bound: ADWIN sees a level collapse within a few hundred sampled requests, then the
    # new level is measured over ``CONFIRM`` of them; rounded up to whole batches.
    bound = int((CONFIRM + 1000) / sample_rate) + 2 * BATCH
    with CustomerAgent(
        settings,
        TraceReplaySource(trace),
        candidates=[model],
        encoder=encoder(),
        drift_monitor=lambda s: None,
    ) as agent:
        summary = agent.run()
        history = agent.store.champion_history()
    kinds = [d.kind for d in summary.decisions]
    assert kinds == ["adopt", "rollback"]
    adopt, rollback = summary.decisions
    assert adopt.request_index < SWITCH_AT
    assert SWITCH_AT < rollback.request_index <= SWITCH_AT + bound
    assert rollback.candidate_id == adopt.candidate_id
    # The statistics: the level after the switch fell below the pre-adoption level.
    assert rollback.statistic is not None and rollback.statistic > settings.rollback_tolerance
    assert rollback.challenger_hit_ratio is not None and rollback.champion_hit_ratio is not None
    assert rollback.challenger_hit_ratio < rollback.champion_hit_ratio
    assert rollback.details["adopted_at"] == adopt.request_index
    assert summary.champion["kind"] == "none"
    assert [(h.kind, h.reason) for h in history] == [
        ("none", "initial"),
        ("model", "adopt"),
        ("none", "rollback"),
    ]
    assert [h.from_index for h in history[1:]] == [adopt.request_index, rollback.request_index]
