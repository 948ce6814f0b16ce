"""What the agent owes the adoption API: A/B results and champion changes, from its store.

Reports are not a separate queue that could drift from the truth: they are computed from the
committed decision and champion records, minus those the API has answered (the store's
``registry_reports`` table). A kill therefore loses nothing — whatever was committed and not
answered is reported after the restart — and a report whose answer was lost is simply sent
again: its id is derived from what it reports (customer, version, request index), so the API's
idempotency makes the retry harmless.

Only records about registry versions are reported (a candidate given as a local directory is
not the registry's business). A rollback to a champion that is not a registry version (plain
LRU, markov2, or a local model) is reported with ``version = None``: back to the customer's
own baseline.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from federation.client.agent.records import ChampionRecord, DecisionRecord
from federation.client.agent.registry_candidates import registry_version_of
from federation.client.agent.store_queries import StoreQueries

#: Namespace of the report ids (UUID version 5 of a description of the report).
REPORT_NAMESPACE = uuid.UUID("6b0d7c52-3f0e-5d57-9b8e-2f0c6a1d4e11")

ReportKind = Literal["ab_result", "adoption"]


@dataclass(frozen=True)
class Report:
    """One report to send: ``kind`` ``ab_result`` or ``adoption`` and the request's fields.

    Attributes
    ----------
    report_id
        Deterministic id (the A/B result's idempotency id; for adoptions the outbox key).
    kind
        Which endpoint it goes to.
    request_index
        Where in the request stream it happened (reports go out in this order).
    version
        The registry version it is about (``None``: the customer's own baseline).
    body
        Keyword arguments of :meth:`RegistryClient.post_ab_result` or ``post_adoption``.
    """

    report_id: str
    kind: ReportKind
    request_index: int
    version: str | None
    body: dict[str, Any] = field(default_factory=dict)


#: Prefix of every report id: the agent recognises its own adoption records by it (any other
#: record in a customer's history is an operator's directive).
REPORT_PREFIX = "agent-"


def report_id(customer_id: str, what: str, version: str | None, request_index: int) -> str:
    """Return the id of the report of ``what`` about ``version`` at ``request_index``."""
    name = f"{customer_id}/{what}/{version or '-'}/{request_index}"
    return REPORT_PREFIX + str(uuid.uuid5(REPORT_NAMESPACE, name))


class RegistryNames:
    """Registry versions of the agent's model versions (built from a registry candidate or not).

    A candidate materialized from the registry names its version in its manifest; a challenger
    built from it inherits it through its parent. Answers are cached (records never change).
    """

    def __init__(self, store: StoreQueries) -> None:
        self._store = store
        self._cache: dict[int, str | None] = {}

    def __repr__(self) -> str:
        return f"RegistryNames(cached={len(self._cache)})"

    def of(self, version_id: int | None) -> str | None:
        """Return the registry version of model version ``version_id`` (``None``: not one)."""
        if version_id is None:
            return None
        if version_id not in self._cache:
            record = self._store.model_version(version_id)
            name = registry_version_of(record.directory)
            if name is None and record.parent_id is not None:
                name = self.of(record.parent_id)
            self._cache[version_id] = name
        return self._cache[version_id]


def pending_reports(
    store: StoreQueries, customer_id: str, names: RegistryNames, answered: set[str]
) -> list[Report]:
    """Return the reports not yet answered, in the order they happened.

    Parameters
    ----------
    store
        The agent's store (committed records only).
    customer_id
        The customer the reports are for.
    names
        Registry versions of the store's model versions.
    answered
        Ids of the reports the API has answered already.
    """
    decisions = store.decisions()
    history = store.champion_history()
    reports: list[tuple[int, int, Report]] = []
    ab_ids: dict[int, str] = {}
    for d in decisions:
        if d.kind not in ("adopt", "reject", "inconclusive"):
            continue
        challenger = names.of(d.candidate_id)
        if challenger is None:
            continue
        rid = report_id(customer_id, "ab", challenger, d.request_index)
        if d.kind == "adopt":
            ab_ids[d.request_index] = rid
        champion = names.of(_champion_at(d, history))
        body = {
            "result_id": rid,
            "challenger_version": challenger,
            "champion_version": champion,
            "decision": d.kind,
            "statistics": _statistics(d),
        }
        reports.append(
            (d.request_index, 0, Report(rid, "ab_result", d.request_index, challenger, body))
        )
    rollbacks = {d.request_index: d for d in decisions if d.kind == "rollback"}
    for previous, record in itertools.pairwise(history):
        if record.reason not in ("adopt", "rollback"):
            continue
        version = names.of(record.version_id)
        left = names.of(previous.version_id)
        if record.reason == "adopt":
            if version is None:
                continue
            ab = ab_ids.get(record.from_index)
            body = {
                "version": version,
                "action": "adopt",
                "reason": f"A/B test won at request {record.from_index:,}",
                "ab_result_id": ab,
            }
        else:
            if left is None:
                continue  # the registry never knew of the model that is rolled back
            body = {
                "version": version,
                "action": "rollback",
                "reason": _rollback_reason(rollbacks.get(record.from_index), left),
            }
        rid = report_id(customer_id, record.reason, version, record.from_index)
        body["adoption_id"] = rid
        reports.append(
            (record.from_index, 1, Report(rid, "adoption", record.from_index, version, body))
        )
    reports.sort(key=lambda item: (item[0], item[1]))
    return [r for _, _, r in reports if r.report_id not in answered]


def _champion_at(decision: DecisionRecord, history: list[ChampionRecord]) -> int | None:
    """Return the model version serving when ``decision`` was taken."""
    recorded = decision.details.get("champion_version_id", "unknown")
    if recorded is None or isinstance(recorded, int):
        return recorded
    serving: int | None = None
    for record in history:
        if record.from_index < decision.request_index or (
            record.from_index == decision.request_index
            and record.reason not in ("adopt", "rollback")
        ):
            serving = record.version_id
    return serving


def _statistics(decision: DecisionRecord) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "request_index": decision.request_index,
        "requests_used": decision.requests_used,
        "statistic": decision.statistic,
        "champion_hit_ratio": decision.champion_hit_ratio,
        "challenger_hit_ratio": decision.challenger_hit_ratio,
    }
    for key, value in decision.details.items():
        if key not in stats and not key.endswith("_id"):
            stats[key] = value
    cleaned = _plain(stats)
    assert isinstance(cleaned, dict)
    return cleaned


def _rollback_reason(decision: DecisionRecord | None, left: str) -> str:
    if decision is None:
        return f"rolled back from {left}"
    return (
        f"degradation after adopting {left}: hit ratio {decision.challenger_hit_ratio or 0:.4f} "
        f"against {decision.champion_hit_ratio or 0:.4f} before it (request "
        f"{decision.request_index:,})"
    )


def _plain(value: Any) -> Any:
    """Return ``value`` as plain JSON (non-finite floats become ``None``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
