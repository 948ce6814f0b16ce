"""The read side of the agent's store: recorded artifacts, records and samples."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from federation.client.agent.errors import AgentStateError
from federation.client.agent.orm import (
    AdapterRow,
    ChampionRow,
    DecisionRow,
    DirectiveRow,
    DriftEventRow,
    ModelVersionRow,
    RefreshEventRow,
    RegistryReportRow,
    SampleRow,
)
from federation.client.agent.records import (
    AdapterRecord,
    ChampionRecord,
    DecisionRecord,
    Directive,
    DirectiveRecord,
    DriftRecord,
    ModelVersionRecord,
    RefreshRecord,
)
from federation.client.agent.store_rows import (
    adapter_record,
    champion_record,
    decision_record,
    directive_status,
    drift_record,
    refresh_record,
    version_record,
)

#: Directory recorded for a registry version the agent refused (it has no directory).
REFUSED_PREFIX = "registry:"

#: Row layout of :meth:`StoreQueries.recent_samples`.
STORED_SAMPLE_DTYPE = np.dtype(
    [("request_index", "<i8"), ("timestamp", "<f8"), ("key", "<u8"), ("op", "u1"), ("hit", "u1")]
)


class StoreQueries:
    """Read-only queries of the store (the base of :class:`~.store.AgentStore`)."""

    _sessions: sessionmaker[Session]

    # -- artifacts -----------------------------------------------------------------------------

    def find_adapter(self, source: str, request_index: int) -> AdapterRecord | None:
        """Return the adapter recorded for ``(source, request_index)``, if any."""
        with self._sessions() as session:
            row = session.scalars(
                select(AdapterRow)
                .where(AdapterRow.source == source, AdapterRow.request_index == request_index)
                .order_by(AdapterRow.id)
            ).first()
            return None if row is None else adapter_record(row)

    def adapter(self, adapter_id: int) -> AdapterRecord:
        """Return the adapter record ``adapter_id``.

        Raises
        ------
        AgentStateError
            If there is none.
        """
        with self._sessions() as session:
            row = session.get(AdapterRow, adapter_id)
            if row is None:
                raise AgentStateError(f"the store has no adapter {adapter_id}")
            return adapter_record(row)

    def find_model_version(
        self, source: str, request_index: int, parent_id: int | None = None
    ) -> ModelVersionRecord | None:
        """Return the model version recorded for ``(source, request_index, parent_id)``."""
        query = select(ModelVersionRow).where(
            ModelVersionRow.source == source, ModelVersionRow.request_index == request_index
        )
        if parent_id is not None:
            query = query.where(ModelVersionRow.parent_id == parent_id)
        with self._sessions() as session:
            row = session.scalars(query.order_by(ModelVersionRow.id)).first()
            return None if row is None else version_record(row)

    def model_version(self, version_id: int) -> ModelVersionRecord:
        """Return model version ``version_id``.

        Raises
        ------
        AgentStateError
            If there is none.
        """
        with self._sessions() as session:
            row = session.get(ModelVersionRow, version_id)
            if row is None:
                raise AgentStateError(f"the store has no model version {version_id}")
            return version_record(row)

    def model_versions(self, source: str | None = None) -> list[ModelVersionRecord]:
        """Return the recorded model versions (of one ``source``), oldest first."""
        query = select(ModelVersionRow).order_by(ModelVersionRow.id)
        if source is not None:
            query = query.where(ModelVersionRow.source == source)
        with self._sessions() as session:
            return [version_record(r) for r in session.scalars(query)]

    # -- records -------------------------------------------------------------------------------

    def decisions(self) -> list[DecisionRecord]:
        """Return every recorded decision, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(select(DecisionRow).order_by(DecisionRow.id))
            return [decision_record(r) for r in rows]

    def drift_events(self) -> list[DriftRecord]:
        """Return every recorded drift event, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(select(DriftEventRow).order_by(DriftEventRow.id))
            return [drift_record(r) for r in rows]

    def refreshes(self) -> list[RefreshRecord]:
        """Return every recorded adapter refresh, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(select(RefreshEventRow).order_by(RefreshEventRow.id))
            return [refresh_record(r) for r in rows]

    def champion_history(self) -> list[ChampionRecord]:
        """Return the champion history, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(select(ChampionRow).order_by(ChampionRow.id))
            return [champion_record(r) for r in rows]

    def sample_count(self) -> int:
        """Return the number of sampled accesses stored."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count(SampleRow.id))) or 0)

    def recent_samples(self, limit: int, before_index: int | None = None) -> NDArray[np.void]:
        """Return up to ``limit`` most recent stored samples, oldest first.

        Parameters
        ----------
        limit
            Rows at most.
        before_index
            Only samples of batches starting before this request index.

        Returns
        -------
        numpy.ndarray
            Rows of :data:`STORED_SAMPLE_DTYPE`.
        """
        query = select(
            SampleRow.request_index, SampleRow.timestamp, SampleRow.key, SampleRow.op, SampleRow.hit
        )
        if before_index is not None:
            query = query.where(SampleRow.request_index < before_index)
        query = query.order_by(SampleRow.id.desc()).limit(limit)
        with self._sessions() as session:
            rows = list(session.execute(query).all())
        out = np.zeros(len(rows), dtype=STORED_SAMPLE_DTYPE)
        if rows:
            rows.reverse()
            out["request_index"] = [r[0] for r in rows]
            out["timestamp"] = [r[1] for r in rows]
            out["key"] = np.array([r[2] for r in rows], dtype=np.int64).view(np.uint64)
            out["op"] = [r[3] for r in rows]
            out["hit"] = [r[4] for r in rows]
        return out

    # -- reports to the adoption API -----------------------------------------------------------

    def answered_reports(self) -> set[str]:
        """Return the ids of the reports the adoption API has answered (sent or rejected)."""
        with self._sessions() as session:
            return set(session.scalars(select(RegistryReportRow.report_id)))

    def refused_registry_versions(self) -> dict[str, str | None]:
        """Return registry version → error of every version the agent refused."""
        return {
            v.directory.removeprefix(REFUSED_PREFIX): v.error
            for v in self.model_versions("registry")
            if v.status == "refused"
        }

    def registry_report_counts(self) -> dict[str, int]:
        """Return how many answered reports there are, by status (``sent``, ``rejected``)."""
        with self._sessions() as session:
            rows = session.execute(
                select(RegistryReportRow.status, func.count()).group_by(RegistryReportRow.status)
            ).all()
            return {str(status): int(count) for status, count in rows}

    # -- operator directives -------------------------------------------------------------------

    def directives(self) -> list[DirectiveRecord]:
        """Return the operator directives applied (or refused) so far, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(select(DirectiveRow).order_by(DirectiveRow.id)).all()
            return [
                DirectiveRecord(
                    directive=Directive(r.record_id, r.action, r.version, r.reason, r.actor),
                    request_index=r.request_index,
                    candidate_id=r.candidate_id,
                    status=directive_status(r.status),
                    error=r.error,
                )
                for r in rows
            ]
