"""Resuming over a live source: rebuild the agent's state from its last checkpoint alone.

A live source cannot replay what the agent has already served, so the restarted agent continues
at the stored request index with the stored champion and adapter, and restores a running A/B
test (the test's counts, its ghost caches and its stream position) and a degradation watch
(ADWIN's window included) from their JSON state. The batches lost by the kill are simply not
counted: a live stream does not come back.
"""

from __future__ import annotations

from dataclasses import dataclass

from customer_models.abtest import (
    AbTestError,
    DegradationMonitor,
    PairedSequentialTest,
    TrafficSplitTest,
    adoption_test_from_state,
)
from federation.client.agent.errors import AgentStateError
from federation.client.agent.models import ModelShop
from federation.client.agent.records import AgentSnapshot, ChampionKind
from federation.client.agent.settings import ABMode
from federation.client.agent.shadow import ShadowPair
from federation.client.agent.trial import Champion, Trial, Watch, parse_state, unpack_baseline


@dataclass
class ResumedState:
    """The in-memory state rebuilt from a checkpoint."""

    position: int
    champion: Champion
    trial: Trial | None
    watch: Watch | None
    requests: int
    hits: int
    prefetch_issued: int
    prefetch_used: int
    wants_round: bool


def restore_live_state(snapshot: AgentSnapshot, shop: ModelShop, position: int) -> ResumedState:
    """Rebuild champion, test and watch from ``snapshot`` (see the module docstring).

    Raises
    ------
    AgentStateError
        If a saved test or watch cannot be restored.
    """
    champion = shop.champion(
        snapshot.champion_kind, snapshot.champion_version_id, snapshot.adapter_id, position
    )
    trial = None
    if snapshot.abtest_json is not None:
        trial = _trial(snapshot.abtest_json, shop, position)
    watch = None
    if snapshot.monitor_json is not None:
        watch = _watch(snapshot.monitor_json, shop, position)
    return ResumedState(
        position=position,
        champion=champion,
        trial=trial,
        watch=watch,
        requests=snapshot.requests,
        hits=snapshot.hits,
        prefetch_issued=snapshot.prefetch_issued,
        prefetch_used=snapshot.prefetch_used,
        wants_round=snapshot.wants_round,
    )


def _trial(text: str, shop: ModelShop, position: int) -> Trial:
    state = parse_state(text, "A/B test")
    try:
        test = adoption_test_from_state(state["test"])
        challenger = shop.champion(
            "model", int(state["challenger_id"]), int(state["adapter_id"]), position
        )
        shadow = None if state["shadow"] is None else ShadowPair.from_state_dict(state["shadow"])
        mode: ABMode = "shadow" if isinstance(test, PairedSequentialTest) else "split"
        trial = Trial(
            candidate_id=int(state["candidate_id"]),
            challenger_id=int(state["challenger_id"]),
            adapter_id=int(state["adapter_id"]),
            start_index=int(state["start_index"]),
            mode=mode,
            test=test,
            proposer=challenger.proposer,
            shadow=shadow,
            salt=int(state["salt"]),
            position=int(state["position"]),
            warmup=int(state["warmup"]),
        )
        trial.add_baseline(unpack_baseline(str(state["baseline"])))
    except (KeyError, TypeError, ValueError, AbTestError) as exc:
        raise AgentStateError(f"the saved A/B test cannot be restored: {exc!r}") from None
    if not isinstance(test, PairedSequentialTest | TrafficSplitTest):
        raise AgentStateError("the saved A/B test is of an unknown kind")
    return trial


def _watch(text: str, shop: ModelShop, position: int) -> Watch:
    state = parse_state(text, "degradation watch")
    try:
        monitor = DegradationMonitor.from_state_dict(state["monitor"])
        prev = state["previous"]
        kind: ChampionKind = prev["kind"]
        if kind not in ("none", "markov2", "model"):
            raise ValueError(f"unknown champion kind {kind!r}")
        previous = shop.champion(kind, prev["version_id"], prev["adapter_id"], position)
        return Watch(monitor, previous, int(state["candidate_id"]), int(state["adopted_at"]))
    except (KeyError, TypeError, ValueError, AbTestError) as exc:
        raise AgentStateError(f"the saved degradation watch cannot be restored: {exc!r}") from None
