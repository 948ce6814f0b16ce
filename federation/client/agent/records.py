"""Plain records the agent store reads and writes (detached from any database session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DecisionKind = Literal["adopt", "reject", "inconclusive", "rollback", "refused"]
ChampionKind = Literal["none", "markov2", "model"]


@dataclass(frozen=True)
class AgentSnapshot:
    """What one checkpoint commits: progress, counters, champion, adapter, ledger, A/B state.

    Attributes
    ----------
    next_index
        First request not yet processed (requests before it are fully accounted).
    requests, hits
        Demand requests served and those that hit, over the whole run.
    prefetch_issued, prefetch_used
        Prefetches inserted by the champion and those hit before eviction.
    champion_kind, champion_version_id
        What serves now: ``"none"``, ``"markov2"`` or ``"model"`` (with its model version).
    adapter_id
        The customer's current adapter (``None`` before it has one).
    ledger_json
        The privacy ledger's JSON state.
    abtest_json, abtest_counted_index
        The A/B test in progress (JSON state) and the first request it has not counted.
    monitor_json
        The post-adoption degradation watch in progress (JSON), if any.
    wants_round
        Whether the customer asks to take part in the next federated round (set by drift).
    """

    next_index: int
    requests: int
    hits: int
    prefetch_issued: int
    prefetch_used: int
    champion_kind: ChampionKind
    champion_version_id: int | None
    adapter_id: int | None
    ledger_json: str
    abtest_json: str | None = None
    abtest_counted_index: int | None = None
    monitor_json: str | None = None
    wants_round: bool = False


@dataclass(frozen=True)
class ModelVersionRecord:
    """A model directory seen by the agent (``source``: champion, candidate, challenger)."""

    id: int
    directory: str
    sha256: str
    source: str
    status: str
    error: str | None
    request_index: int
    parent_id: int | None


@dataclass(frozen=True)
class AdapterRecord:
    """An adapter file under the state directory, with its sha256 and provenance."""

    id: int
    path: str
    sha256: str
    source: str
    request_index: int
    samples: int
    steps: int
    loss: float | None


@dataclass(frozen=True)
class DecisionRecord:
    """An adoption decision, a rollback or a refused candidate, with its statistics."""

    kind: DecisionKind
    request_index: int
    candidate_id: int | None = None
    requests_used: int = 0
    statistic: float | None = None
    champion_hit_ratio: float | None = None
    challenger_hit_ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able values."""
        return {
            "kind": self.kind,
            "request_index": self.request_index,
            "candidate_id": self.candidate_id,
            "requests_used": self.requests_used,
            "statistic": self.statistic,
            "champion_hit_ratio": self.champion_hit_ratio,
            "challenger_hit_ratio": self.challenger_hit_ratio,
            "details": self.details,
        }


@dataclass(frozen=True)
class DriftRecord:
    """A drift event: the request index it was raised at, its detector and statistic."""

    request_index: int
    detector: str
    statistic: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able values."""
        return {
            "request_index": self.request_index,
            "detector": self.detector,
            "statistic": self.statistic,
            "details": self.details,
        }


@dataclass(frozen=True)
class RefreshRecord:
    """A local adapter refresh and the adapter it produced (``None``: nothing to refit)."""

    request_index: int
    trigger: str
    adapter_id: int | None
    samples: int
    steps: int
    loss: float | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able values."""
        return {
            "request_index": self.request_index,
            "trigger": self.trigger,
            "adapter_id": self.adapter_id,
            "samples": self.samples,
            "steps": self.steps,
            "loss": self.loss,
            "details": self.details,
        }


@dataclass(frozen=True)
class ChampionRecord:
    """What serves from ``from_index`` on (``reason``: initial, adopt, rollback, refresh)."""

    kind: ChampionKind
    version_id: int | None
    adapter_id: int | None
    from_index: int
    reason: str


@dataclass(frozen=True)
class RegistryAnswer:
    """The adoption API's final answer to one report: ``sent`` or ``rejected`` (with why)."""

    report_id: str
    kind: str
    request_index: int
    version: str | None
    status: Literal["sent", "rejected"]
    error: str | None = None


@dataclass(frozen=True)
class Directive:
    """An operator's change of the customer's champion (an adoption record of the API).

    ``version`` ``None`` means back to the customer's own baseline (its initial champion).
    """

    record_id: int
    action: str
    version: str | None
    reason: str
    actor: str


@dataclass(frozen=True)
class DirectiveRecord:
    """A directive as the agent applied it: where, with which candidate, and the outcome."""

    directive: Directive
    request_index: int
    candidate_id: int | None
    status: Literal["applied", "unchanged", "refused"]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able values."""
        d = self.directive
        return {
            "record_id": d.record_id,
            "action": d.action,
            "version": d.version,
            "reason": d.reason,
            "actor": d.actor,
            "request_index": self.request_index,
            "status": self.status,
            "error": self.error,
        }
