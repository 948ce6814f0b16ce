"""What an agent run reports: :class:`AgentSummary` (the ``predis-fl agent --json`` object)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.client.agent.records import DecisionRecord, DriftRecord, RefreshRecord


@dataclass(frozen=True)
class AgentSummary:
    """The state of an agent after a run, from its store.

    Attributes
    ----------
    customer_id, state_dir
        Whose agent, and where its state lives.
    requests
        Requests processed over the agent's whole life (the next request index).
    hit_ratio, prefetch_precision, prefetches_per_request
        Live-cache figures over those requests.
    drift_events, refreshes, decisions
        Every recorded drift event, adapter refresh and decision, oldest first.
    champion
        ``kind``, ``version_id``, ``adapter_id`` and ``directory`` of the model serving now.
    wants_round
        Whether the customer asks to join the next federated round.
    epsilon_spent
        ε spent so far (privacy ledger).
    resumed_from
        Request index the run resumed from (0 on a first start).
    recovery_consistent
        Whether re-running the recorded history reproduced the stored state exactly (``None``
        when there was nothing to re-run).
    abtest
        The decision so far of an A/B test still running, if any.
    registry
        The link to the adoption API (reachability, reports waiting, versions downloaded,
        reports answered and versions refused), or ``None`` when no API is configured.
    """

    customer_id: str
    state_dir: str
    requests: int
    hit_ratio: float
    prefetch_precision: float
    prefetches_per_request: float
    drift_events: tuple[DriftRecord, ...]
    refreshes: tuple[RefreshRecord, ...]
    decisions: tuple[DecisionRecord, ...]
    champion: dict[str, Any]
    wants_round: bool
    epsilon_spent: float
    resumed_from: int
    recovery_consistent: bool | None
    abtest: dict[str, Any] | None
    registry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-able values."""
        return {
            "customer_id": self.customer_id,
            "state_dir": self.state_dir,
            "requests": self.requests,
            "hit_ratio": self.hit_ratio,
            "prefetch_precision": self.prefetch_precision,
            "prefetches_per_request": self.prefetches_per_request,
            "drift_events": [e.to_dict() for e in self.drift_events],
            "refreshes": [r.to_dict() for r in self.refreshes],
            "decisions": [d.to_dict() for d in self.decisions],
            "champion": self.champion,
            "wants_round": self.wants_round,
            "epsilon_spent": self.epsilon_spent,
            "resumed_from": self.resumed_from,
            "recovery_consistent": self.recovery_consistent,
            "abtest": self.abtest,
            "registry": self.registry,
        }
