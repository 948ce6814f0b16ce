"""The agent's per-batch state machine (the body of :class:`~.agent.CustomerAgent`).

:class:`AgentRun` holds everything in memory — node, champion, drift monitor, the adoption flow
(:class:`~.adoption.Adoption`), counters, and the records not yet committed — and advances it
one batch at a time in a fixed order (serve; drain and detect drift; watch; test; candidates;
start a test), so that re-running the same batches rebuilds the same state. While it re-runs
history that is already committed (:attr:`AgentRun.recovering`) it records nothing and reuses
the recorded artifacts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from cache_core.sampler import AccessOp
from customer_models import KeyEncoder
from federation.client.agent.adoption import Adoption
from federation.client.agent.drift_feed import DriftMonitorLike, event_details
from federation.client.agent.errors import AgentStateError, CandidateRefusedError
from federation.client.agent.metrics import AgentMetrics
from federation.client.agent.models import ModelShop
from federation.client.agent.pending import PendingRecords, RecordSink
from federation.client.agent.records import (
    AgentSnapshot,
    ChampionRecord,
    Directive,
    DirectiveRecord,
    DriftRecord,
)
from federation.client.agent.recovery import recovery_problems
from federation.client.agent.registry_link import RegistryLink
from federation.client.agent.registry_reports import RegistryNames, pending_reports
from federation.client.agent.resume import restore_live_state
from federation.client.agent.serving import BatchCounts, ReplayServer
from federation.client.agent.settings import AgentSettings
from federation.client.agent.source import RequestBatch, RequestSource
from federation.client.agent.store import AgentStore
from federation.client.agent.store_queries import STORED_SAMPLE_DTYPE
from federation.client.agent.summary import AgentSummary
from federation.client.agent.trial import Champion
from privacy import PrivacyBudget, PrivacyLedger

_log = logging.getLogger(__name__)
_GET = int(AccessOp.GET)


class AgentRun:
    """The agent's in-memory state and its per-batch step (see the module docstring)."""

    def __init__(
        self,
        settings: AgentSettings,
        source: RequestSource,
        store: AgentStore,
        encoder: KeyEncoder,
        capacity: int,
        metrics: AgentMetrics,
        *,
        initial_champion: str | Path,
        candidates: list[Path],
        drift: DriftMonitorLike | None,
        link: RegistryLink | None = None,
    ) -> None:
        torch.set_num_threads(settings.threads)
        self._link = link
        self._names = RegistryNames(store)
        self._reports_stale = True  # what the store holds is reported at the first sync
        self._refused_count: int | None = None
        self._recorded_directives = store.directives()
        self._s = settings
        self._source = source
        self._store = store
        self._metrics = metrics
        self._drift = drift
        self._shop = ModelShop(store, settings, encoder, source)
        self._server = ReplayServer(
            capacity,
            settings.degree,
            sample_rate=settings.sample_rate,
            sample_window=settings.sample_window,
            seed=settings.seed,
            sample_buffer=max(1 << 16, 8 * settings.batch_size),
        )
        self._sink = RecordSink()
        self._pending = self._sink.target
        self._adoption = Adoption(
            settings,
            store,
            self._shop,
            encoder,
            capacity,
            candidates,
            self._sink,
            more_candidates=None if link is None else link.candidate_dirs,
        )
        snapshot = self._load(store, source)
        self._snapshot = snapshot
        self._committed = 0 if snapshot is None else snapshot.next_index
        self.recovering = bool(
            snapshot is not None
            and self._committed > 0
            and source.replayable
            and settings.warm_restart
        )
        history = store.champion_history()
        if history:
            first = history[0]
        else:
            kind, version, adapter = self._shop.register_initial(initial_champion)
            first = ChampionRecord(kind, version, adapter, 0, "initial")
            self._pending.champions.append(first)
        budget = PrivacyBudget(settings.privacy_epsilon, settings.privacy_delta)
        self.ledger = (
            PrivacyLedger(budget)
            if snapshot is None
            else PrivacyLedger.from_json(snapshot.ledger_json)
        )
        self._epsilon = self._spent_epsilon()
        self.requests = self.hits = self.prefetch_issued = self._pf_used_base = 0
        self.wants_round = False
        self._live_batches = 0
        self.recovery_consistent: bool | None = None
        if snapshot is not None and not self.recovering:
            resumed = restore_live_state(snapshot, self._shop, self._committed)
            self.position, self.champion = resumed.position, resumed.champion
            self.requests, self.hits = resumed.requests, resumed.hits
            self.prefetch_issued = resumed.prefetch_issued
            self._pf_used_base = resumed.prefetch_used
            self.wants_round = resumed.wants_round
            self._adoption.resume(resumed.trial, resumed.watch)
        else:
            self.position = 0
            self.champion = self._shop.champion(first.kind, first.version_id, first.adapter_id, 0)
        if self.recovering:
            self._sink.target = PendingRecords()  # re-produced records, compared at the end
        self._last_commit = self.position

    def _load(self, store: AgentStore, source: RequestSource) -> AgentSnapshot | None:
        loaded = store.load()
        if loaded is None:
            return None
        customer, name, snapshot = loaded
        if customer != self._s.customer_id or name != source.name:
            raise AgentStateError(
                f"the state directory belongs to customer {customer!r} replaying {name!r}, "
                f"not {self._s.customer_id!r} replaying {source.name!r}; use another one"
            )
        trace = getattr(source, "trace", None)
        if trace is not None and snapshot.next_index > len(trace):
            raise AgentStateError(
                f"the store has processed {snapshot.next_index:,} requests but the source has "
                f"only {len(trace):,}"
            )
        return snapshot

    # -- batches -------------------------------------------------------------------------------

    def batches(self) -> Iterator[RequestBatch]:
        """Yield the batches to process: a recorded history cut at the commit, then live ones."""
        for batch in self._source.batches(self.position, self._s.batch_size):
            cut = self._committed - batch.start
            if self.recovering and 0 < cut < len(batch):
                yield RequestBatch(batch.start, batch.keys[:cut], batch.timestamps[:cut])
                yield RequestBatch(self._committed, batch.keys[cut:], batch.timestamps[cut:])
            else:
                yield batch

    def step(self, batch: RequestBatch) -> None:
        """Process one batch: serve, analyse off the serving path, react, commit when due."""
        if batch.start != self.position:
            raise AgentStateError(f"batch starts at {batch.start}, expected {self.position}")
        counts = self._serve(batch)
        self.position = batch.stop
        self.requests += counts.requests
        self.hits += counts.hits
        self.prefetch_issued += counts.prefetch_issued
        index = batch.stop
        self._drain(batch)
        every = self._s.persist_interval
        poll = not self.recovering and (
            self._live_batches == 0 or batch.start // every < index // every
        )
        self.champion = self._adoption.after_batch(
            batch, counts, self.champion, recovering=self.recovering, poll=poll
        )
        directed = self._operator_directives(index, poll=poll)
        if self._adoption.waiting and not directed:
            self._adoption.start_pending(index, self.champion, self._samples(index))
        self._update_metrics(counts)
        if self.recovering:
            if self.position >= self._committed:
                self._finish_recovery()
            return
        self._live_batches += 1
        if self._pending.any() or self.position // every > self._last_commit // every:
            self.commit()

    def _serve(self, batch: RequestBatch) -> BatchCounts:
        stream = self._shop.stream
        block = None if stream is None else stream.advance(batch.stop)
        self.champion.proposer.prepare(block)
        trial = self._adoption.trial
        if trial is not None:
            trial.proposer.prepare(block)
        counts = self._adoption.serve(self._server, batch, self.champion)
        return counts if counts is not None else self._server.serve(batch, self.champion.proposer)

    # -- operator directives -------------------------------------------------------------------

    def _operator_directives(self, index: int, *, poll: bool) -> bool:
        """Apply the operator directives due at ``index``; return whether any was applied.

        Live, they come from the registry link (when polling); while re-running history, the
        recorded ones are applied again at the request they were applied at. No test starts in
        a batch that applied one (its challenger artifacts are keyed by the request index).
        """
        due: list[tuple[Directive, DirectiveRecord | None]]
        if self.recovering:
            due = [(r.directive, r) for r in self._recorded_directives if r.request_index == index]
        elif poll and self._link is not None:
            due = [(d, None) for d in self._link.take_directives()]
        else:
            return False
        for directive, recorded in due:
            self._apply_directive(directive, index, recorded)
        return bool(due)

    def _apply_directive(
        self, directive: Directive, index: int, recorded: DirectiveRecord | None
    ) -> None:
        champion, candidate_id, error = self._directed_champion(directive, index, recorded)
        if error is not None:
            status: Literal["applied", "unchanged", "refused"] = "refused"
            _log.warning("operator directive %d refused: %s", directive.record_id, error)
        elif champion is None:
            status = "unchanged"
        else:
            status = "applied"
            why = f"operator directive {directive.record_id}: {directive.reason}"
            self._adoption.cancel(index, self.champion, why)
            self.champion = champion
            self._sink.champion(champion, index, "operator")
            _log.info(
                "operator directive %d applied at request %d: %s now serves",
                directive.record_id,
                index,
                directive.version or "the baseline",
            )
        if recorded is None:
            self._store.add_directive(
                DirectiveRecord(directive, index, candidate_id, status, error)
            )
            self._sink.arrival()  # the champion record must be committed with this batch

    def _directed_champion(
        self, directive: Directive, index: int, recorded: DirectiveRecord | None
    ) -> tuple[Champion | None, int | None, str | None]:
        """Return the champion a directive asks for (``None``: unchanged), its candidate, error."""
        if directive.version is None:
            first = self._store.champion_history()[0]
            if (self.champion.kind, self.champion.version_id) == (first.kind, first.version_id):
                return None, None, None
            baseline = self._shop.champion(first.kind, first.version_id, first.adapter_id, index)
            return baseline, None, None
        if self._names.of(self.champion.version_id) == directive.version:
            return None, None, None
        if recorded is not None and recorded.candidate_id is not None:
            directory = Path(self._store.model_version(recorded.candidate_id).directory)
        elif self._link is not None:
            directory = self._link.candidates / directive.version
        else:
            return None, None, "no registry link to fetch the version from"
        if not (directory / "manifest.json").is_file():
            return (
                None,
                None,
                (
                    f"version {directive.version} is not available here (its download was refused "
                    "or failed; see the registry link's refusals)"
                ),
            )
        candidate = self._adoption.take_directly(directory, index)
        try:
            built = self._shop.challenger(candidate, self.champion, index, self._samples(index))
        except CandidateRefusedError as exc:
            return None, candidate.id, str(exc)
        champion = Champion("model", built.version.id, built.adapter.id, built.proposer)
        return champion, candidate.id, None

    # -- drift ---------------------------------------------------------------------------------

    def _drain(self, batch: RequestBatch) -> None:
        rows = self._server.sampler.drain()
        if not self.recovering:
            self._pending.samples.append((batch.start, rows))
        if self._drift is None:
            return
        gets = rows[rows["op"] == _GET]
        if gets.shape[0] == 0:
            return
        events = self._drift.update_many(
            np.ascontiguousarray(gets["key"]),
            np.ascontiguousarray(gets["hit"]),
            np.ascontiguousarray(gets["timestamp"]),
        )
        if not events:
            return
        index = batch.stop
        for event in events:
            self._sink.drift(
                DriftRecord(
                    index, str(event.detector), float(event.statistic), event_details(event)
                )
            )
            self._metrics.set(
                self._metrics.drift_statistic, float(event.statistic), str(event.detector)
            )
        self.wants_round = True
        self.champion, refresh = self._shop.refresh(self.champion, index, self._samples(index))
        self._sink.refresh(refresh)
        if refresh.adapter_id is not None:
            self._sink.champion(self.champion, index, "refresh")

    def _samples(self, index: int) -> NDArray[np.void]:
        """Recent stored samples of batches before ``index``, uncommitted ones included."""
        limit = self._s.store_samples
        stored = self._store.recent_samples(limit, before_index=index)
        parts = [stored]
        for start, rows in self._pending.samples:
            if start < index and rows.shape[0]:
                part = np.zeros(rows.shape[0], dtype=STORED_SAMPLE_DTYPE)
                part["request_index"] = start
                for name in ("timestamp", "key", "op", "hit"):
                    part[name] = rows[name]
                parts.append(part)
        joined = np.concatenate(parts) if len(parts) > 1 else stored
        return joined[-limit:]

    # -- commit and recovery -------------------------------------------------------------------

    def snapshot(self) -> AgentSnapshot:
        """Return the state a commit writes now."""
        trial, watch = self._adoption.trial, self._adoption.watch
        return AgentSnapshot(
            next_index=self.position,
            requests=self.requests,
            hits=self.hits,
            prefetch_issued=self.prefetch_issued,
            prefetch_used=self._pf_used_base + self._server.node.stats.prefetch_used,
            champion_kind=self.champion.kind,
            champion_version_id=self.champion.version_id,
            adapter_id=self.champion.adapter_id,
            ledger_json=self.ledger.to_json(),
            abtest_json=None if trial is None else trial.to_json(),
            abtest_counted_index=None if trial is None else self.position,
            monitor_json=None if watch is None else watch.to_json(),
            wants_round=self.wants_round,
        )

    def commit(self) -> None:
        """Commit the snapshot and every pending record in one transaction.

        Nothing is written while recovering: that history is committed already.
        """
        if self.recovering:
            return
        p = self._pending
        self._reports_stale = self._reports_stale or bool(p.decisions or p.champions)
        snapshot = self.snapshot()
        m = self._metrics
        issued = snapshot.prefetch_issued
        m.set(m.prefetch_precision, snapshot.prefetch_used / issued if issued else 0.0)
        m.set(m.prefetches_per_request, issued / self.requests if self.requests else 0.0)
        self._store.checkpoint(
            self._s.customer_id,
            self._source.name,
            snapshot,
            decisions=p.decisions,
            drift_events=p.drift_events,
            refreshes=p.refreshes,
            champions=p.champions,
            samples=p.samples,
            keep_samples=self._s.store_samples,
        )
        self._pending = self._sink.target = PendingRecords()
        self._last_commit = self.position
        self._epsilon = self._spent_epsilon()
        self.sync_registry()

    def _spent_epsilon(self) -> float:
        """Return ε the customer has spent.

        That is its federated rounds' DP-SGD ledger, which the node's ClientApp keeps beside the
        store in deployment, else the agent's own ledger.
        """
        from federation.client.deployment_ledger import federated_epsilon

        federated = federated_epsilon(self._store.state_dir, self._s.customer_id)
        return self.ledger.spent if federated is None else max(federated, self.ledger.spent)

    def sync_registry(self) -> None:
        """Exchange with the registry link: hand it what to report, record its answers.

        Reports come from committed records only; answers and refused downloads are written
        here, on the agent's thread (the link itself never writes the store).
        """
        link = self._link
        if link is None or self.recovering:
            return
        reports = None
        if self._reports_stale:  # new decisions or champions were committed
            reports = pending_reports(
                self._store, self._s.customer_id, self._names, self._store.answered_reports()
            )
            self._reports_stale = False
        answers, refusals = link.sync(reports)
        self._store.record_answers(answers)
        for refusal in refusals:
            self._store.add_refused_registry_version(refusal.version, refusal.error, self.position)
        m = self._metrics
        status = link.status()
        m.set(
            m.registry_reachable, math.nan if status.reachable is None else float(status.reachable)
        )
        m.set(m.registry_reports_waiting, float(status.reports_waiting))
        if refusals or self._refused_count is None:
            self._refused_count = len(self._store.refused_registry_versions())
        m.set(m.registry_refused, float(self._refused_count))

    def _finish_recovery(self) -> None:
        """Compare the re-run history with the store, then go live."""
        stored = self._snapshot
        assert stored is not None
        problems = recovery_problems(self.snapshot(), stored, self._sink.target, self._store)
        self.recovery_consistent = not problems
        if problems:
            _log.warning("the re-run history differs from the store: %s", "; ".join(problems))
            self.requests, self.hits = stored.requests, stored.hits
            self.prefetch_issued = stored.prefetch_issued
        self.wants_round = self.wants_round or stored.wants_round
        self._sink.target = self._pending
        self.recovering = False
        self._last_commit = self.position

    # -- reporting -----------------------------------------------------------------------------

    def _update_metrics(self, counts: BatchCounts) -> None:
        m = self._metrics
        trial, watch = self._adoption.trial, self._adoption.watch
        m.set(m.requests, self.position)
        m.set(m.hit_ratio, self.hits / self.requests if self.requests else 0.0)
        m.set(m.batch_hit_ratio, counts.hits / counts.requests if counts.requests else 0.0)
        m.set(m.abtest_active, 1.0 if trial is not None else 0.0)
        if trial is not None:
            decision = trial.test.decision
            m.set(m.abtest_statistic, decision.statistic)
            m.set(m.abtest_requests, decision.requests_used)
        m.set(m.watching, 1.0 if watch is not None else 0.0)
        m.set(m.champion_version, float(self.champion.version_id or 0))
        m.set(m.epsilon_spent, self._epsilon)
        m.set(m.wants_round, 1.0 if self.wants_round else 0.0)

    def summary(self) -> AgentSummary:
        """Return the agent's state after the last commit (records from the store)."""
        used = self._pf_used_base + self._server.node.stats.prefetch_used
        decisions = tuple(self._store.decisions())
        drift = tuple(self._store.drift_events())
        m = self._metrics
        for kind in ("adopt", "reject", "inconclusive", "rollback", "refused"):
            m.set(m.decisions, sum(d.kind == kind for d in decisions), kind)
        for detector in sorted({e.detector for e in drift}):
            m.set(m.drift_events, sum(e.detector == detector for e in drift), detector)
        champion = self.champion.identity()
        if self.champion.version_id is not None:
            champion["directory"] = self._store.model_version(self.champion.version_id).directory
        trial = self._adoption.trial
        return AgentSummary(
            customer_id=self._s.customer_id,
            state_dir=str(self._store.state_dir),
            requests=self.position,
            hit_ratio=self.hits / self.requests if self.requests else 0.0,
            prefetch_precision=used / self.prefetch_issued if self.prefetch_issued else 0.0,
            prefetches_per_request=self.prefetch_issued / self.requests if self.requests else 0.0,
            drift_events=drift,
            refreshes=tuple(self._store.refreshes()),
            decisions=decisions,
            champion=champion,
            wants_round=self.wants_round,
            epsilon_spent=self._epsilon,
            resumed_from=self._committed,
            recovery_consistent=self.recovery_consistent,
            abtest=None if trial is None else trial.test.decision.to_dict(),
            registry=self._registry_summary(),
        )

    def _registry_summary(self) -> dict[str, Any] | None:
        if self._link is None:
            return None
        summary = self._link.status().to_dict()
        summary["reports_answered"] = self._store.registry_report_counts()
        summary["refused"] = [
            {"version": version, "error": error}
            for version, error in self._store.refused_registry_versions().items()
        ]
        summary["directives"] = [r.to_dict() for r in self._store.directives()]
        return summary
