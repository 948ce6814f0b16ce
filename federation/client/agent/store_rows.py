"""Conversions between the store's ORM rows and the agent's plain records."""

from __future__ import annotations

import json
from typing import Literal

from federation.client.agent.errors import AgentStateError
from federation.client.agent.orm import (
    AdapterRow,
    AgentStateRow,
    ChampionRow,
    DecisionRow,
    DriftEventRow,
    ModelVersionRow,
    RefreshEventRow,
)
from federation.client.agent.records import (
    AdapterRecord,
    AgentSnapshot,
    ChampionKind,
    ChampionRecord,
    DecisionKind,
    DecisionRecord,
    DriftRecord,
    ModelVersionRecord,
    RefreshRecord,
)


def check_owner(row: AgentStateRow, customer_id: str, source_name: str) -> None:
    """Refuse a checkpoint of another customer or request source than the store's."""
    if row.customer_id != customer_id or row.source_name != source_name:
        raise AgentStateError(
            f"the state directory belongs to customer {row.customer_id!r} replaying "
            f"{row.source_name!r}, not {customer_id!r} replaying {source_name!r}; use another "
            "--state-dir"
        )


def fill_state_row(row: AgentStateRow, s: AgentSnapshot) -> None:
    """Copy a snapshot into the state row."""
    row.next_index = s.next_index
    row.requests = s.requests
    row.hits = s.hits
    row.prefetch_issued = s.prefetch_issued
    row.prefetch_used = s.prefetch_used
    row.champion_kind = s.champion_kind
    row.champion_version_id = s.champion_version_id
    row.adapter_id = s.adapter_id
    row.ledger_json = s.ledger_json
    row.abtest_json = s.abtest_json
    row.abtest_counted_index = s.abtest_counted_index
    row.monitor_json = s.monitor_json
    row.wants_round = s.wants_round


def snapshot_of(row: AgentStateRow) -> AgentSnapshot:
    """Return the snapshot a state row holds."""
    return AgentSnapshot(
        next_index=row.next_index,
        requests=row.requests,
        hits=row.hits,
        prefetch_issued=row.prefetch_issued,
        prefetch_used=row.prefetch_used,
        champion_kind=champion_kind(row.champion_kind),
        champion_version_id=row.champion_version_id,
        adapter_id=row.adapter_id,
        ledger_json=row.ledger_json,
        abtest_json=row.abtest_json,
        abtest_counted_index=row.abtest_counted_index,
        monitor_json=row.monitor_json,
        wants_round=row.wants_round,
    )


def champion_kind(kind: str) -> ChampionKind:
    """Return a stored champion kind, checked."""
    if kind == "none":
        return "none"
    if kind == "markov2":
        return "markov2"
    if kind == "model":
        return "model"
    raise AgentStateError(f"unknown champion kind {kind!r} in the store")


def decision_kind(kind: str) -> DecisionKind:
    """Return a stored decision kind, checked."""
    if kind in ("adopt", "reject", "inconclusive", "rollback", "refused"):
        return kind  # type: ignore[return-value]
    raise AgentStateError(f"unknown decision kind {kind!r} in the store")


def decision_row(d: DecisionRecord) -> DecisionRow:
    """Return the row of a decision."""
    return DecisionRow(
        kind=d.kind,
        request_index=d.request_index,
        candidate_id=d.candidate_id,
        requests_used=d.requests_used,
        statistic=d.statistic,
        champion_hit_ratio=d.champion_hit_ratio,
        challenger_hit_ratio=d.challenger_hit_ratio,
        details_json=json.dumps(d.details, sort_keys=True),
    )


def drift_row(e: DriftRecord) -> DriftEventRow:
    """Return the row of a drift event."""
    return DriftEventRow(
        request_index=e.request_index,
        detector=e.detector,
        statistic=e.statistic,
        details_json=json.dumps(e.details, sort_keys=True),
    )


def refresh_row(r: RefreshRecord) -> RefreshEventRow:
    """Return the row of an adapter refresh."""
    return RefreshEventRow(
        request_index=r.request_index,
        trigger=r.trigger,
        adapter_id=r.adapter_id,
        samples=r.samples,
        steps=r.steps,
        loss=r.loss,
        details_json=json.dumps(r.details, sort_keys=True),
    )


def champion_row(c: ChampionRecord) -> ChampionRow:
    """Return the row of a champion change."""
    return ChampionRow(
        kind=c.kind,
        version_id=c.version_id,
        adapter_id=c.adapter_id,
        from_index=c.from_index,
        reason=c.reason,
    )


def adapter_record(row: AdapterRow) -> AdapterRecord:
    """Return the record of an adapter row."""
    return AdapterRecord(
        id=row.id,
        path=row.path,
        sha256=row.sha256,
        source=row.source,
        request_index=row.request_index,
        samples=row.samples,
        steps=row.steps,
        loss=row.loss,
    )


def version_record(row: ModelVersionRow) -> ModelVersionRecord:
    """Return the record of a model-version row."""
    return ModelVersionRecord(
        id=row.id,
        directory=row.directory,
        sha256=row.sha256,
        source=row.source,
        status=row.status,
        error=row.error,
        request_index=row.request_index,
        parent_id=row.parent_id,
    )


def decision_record(row: DecisionRow) -> DecisionRecord:
    """Return the record of a decision row."""
    return DecisionRecord(
        kind=decision_kind(row.kind),
        request_index=row.request_index,
        candidate_id=row.candidate_id,
        requests_used=row.requests_used,
        statistic=row.statistic,
        champion_hit_ratio=row.champion_hit_ratio,
        challenger_hit_ratio=row.challenger_hit_ratio,
        details=json.loads(row.details_json),
    )


def drift_record(row: DriftEventRow) -> DriftRecord:
    """Return the record of a drift-event row."""
    return DriftRecord(row.request_index, row.detector, row.statistic, json.loads(row.details_json))


def refresh_record(row: RefreshEventRow) -> RefreshRecord:
    """Return the record of a refresh-event row."""
    return RefreshRecord(
        row.request_index,
        row.trigger,
        row.adapter_id,
        row.samples,
        row.steps,
        row.loss,
        json.loads(row.details_json),
    )


def champion_record(row: ChampionRow) -> ChampionRecord:
    """Return the record of a champion-history row."""
    return ChampionRecord(
        champion_kind(row.kind), row.version_id, row.adapter_id, row.from_index, row.reason
    )


def directive_status(value: str) -> Literal["applied", "unchanged", "refused"]:
    """Return a stored directive status, checked."""
    if value not in ("applied", "unchanged", "refused"):
        raise AgentStateError(f"unknown directive status {value!r} in the store")
    return value  # type: ignore[return-value]
