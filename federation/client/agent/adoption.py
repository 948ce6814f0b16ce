"""Adoption of candidate global models: queue, A/B test, decision, degradation watch, rollback.

:class:`Adoption` owns what happens to candidates after the agent has served a batch, always in
the same order: the degradation watch of a newly adopted champion (a rollback restores the
previous one), the running A/B test (its decision is recorded; ``adopt`` switches the champion
and opens a watch), candidate arrivals, and the start of the next test. A candidate waits in the
queue while a test or a watch runs. Arrivals are recorded as artifacts with the request index
they arrived at, so a replay after a kill offers each one again at the same point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from customer_models import KeyEncoder
from customer_models.abtest import (
    AbDecision,
    DegradationMonitor,
    PairedSequentialTest,
    TrafficSplitTest,
    switchback_arms,
)
from federation.client.agent.errors import CandidateRefusedError
from federation.client.agent.model_work import manifest_sha256
from federation.client.agent.models import ModelShop
from federation.client.agent.records import DecisionRecord, ModelVersionRecord
from federation.client.agent.serving import BatchCounts, ReplayServer
from federation.client.agent.settings import AgentSettings
from federation.client.agent.shadow import ShadowPair, sample_mask
from federation.client.agent.source import RequestBatch
from federation.client.agent.store import AgentStore
from federation.client.agent.trial import Champion, Trial, Watch

_log = logging.getLogger(__name__)

#: Sampled requests a shadow test serves on its (empty) ghost caches before counting, in ghost
#: capacities: enough for both to fill and reach their steady state. The warm-up also lasts at
#: least ``rollback_confirm`` sampled requests, so the live pre-adoption hit level a later
#: degradation watch compares with is known before anything can be adopted.
WARMUP_CAPACITIES = 3


class Recorder(Protocol):
    """Where the adoption flow records what it decides (the agent's pending records)."""

    def decision(self, record: DecisionRecord) -> None:
        """Record a decision."""
        ...

    def champion(self, champion: Champion, index: int, reason: str) -> None:
        """Record that ``champion`` serves from request ``index`` on."""
        ...

    def arrival(self) -> None:
        """Note that a candidate arrived (the batch must be committed)."""
        ...


class Adoption:
    """Candidates, the A/B test and the degradation watch (see the module docstring).

    Parameters
    ----------
    settings
        The agent's settings.
    store
        The agent's store (candidate arrivals are recorded there at once).
    shop
        Builds challengers.
    encoder
        The customer's key encoder (salts of the traffic split).
    capacity
        The node's capacity in objects.
    candidate_paths
        Candidate model directories given at start.
    recorder
        Receives decisions, champion changes and arrivals.
    more_candidates
        Lists further candidate directories when polled (the registry link's downloads).
    """

    def __init__(
        self,
        settings: AgentSettings,
        store: AgentStore,
        shop: ModelShop,
        encoder: KeyEncoder,
        capacity: int,
        candidate_paths: list[Path],
        recorder: Recorder,
        more_candidates: Callable[[], list[Path]] | None = None,
    ) -> None:
        self._s = settings
        self._store = store
        self._shop = shop
        self._encoder = encoder
        self._capacity = capacity
        self._paths = candidate_paths
        self._recorder = recorder
        self._more = more_candidates
        self._recorded = {c.id: c for c in store.model_versions("candidate")}
        self._offered: set[int] = set()
        self._queue: list[ModelVersionRecord] = []
        self._arms = np.zeros(0, dtype=np.uint8)
        self.trial: Trial | None = None
        self.watch: Watch | None = None

    def __repr__(self) -> str:
        return f"Adoption(trial={self.trial is not None}, watch={self.watch is not None})"

    def resume(self, trial: Trial | None, watch: Watch | None) -> None:
        """Continue a restored test and watch; decided candidates are not offered again."""
        self.trial, self.watch = trial, watch
        decided = {d.candidate_id for d in self._store.decisions() if d.kind != "rollback"}
        decided |= {r.candidate_id for r in self._store.directives()}
        for c in self._recorded.values():
            if c.id in decided or (trial is not None and c.id == trial.candidate_id):
                self._offered.add(c.id)

    # -- serving -------------------------------------------------------------------------------

    def serve(
        self, server: ReplayServer, batch: RequestBatch, champion: Champion
    ) -> BatchCounts | None:
        """Serve ``batch`` the way a running test or watch needs (``None``: neither runs)."""
        trial = self.trial
        if trial is not None:
            if trial.shadow is not None:
                return server.serve_shadow(batch, champion.proposer, trial.proposer, trial.shadow)
            # Switchback by interval of the test's own request count: splitting by key would
            # compare two key populations as well as two models (customer_models.abtest).
            self._arms = switchback_arms(trial.position, len(batch), salt=trial.salt)
            counts = server.serve_split(batch, champion.proposer, trial.proposer, self._arms)
            assert counts.request_hits is not None
            trial.add_baseline(counts.request_hits[self._arms == 0])
            return counts
        if self.watch is not None:
            mask = sample_mask(batch.keys, self._s.ab_sample_rate)
            return server.serve_watch(batch, champion.proposer, mask)
        return None

    # -- after a batch -------------------------------------------------------------------------

    def after_batch(
        self,
        batch: RequestBatch,
        counts: BatchCounts,
        champion: Champion,
        *,
        recovering: bool,
        poll: bool,
    ) -> Champion:
        """Watch, test, take candidates in; return the champion serving next.

        Parameters
        ----------
        batch, counts
            The batch just served and what it counted.
        champion
            The champion that served it.
        recovering
            Whether this batch re-runs recorded history (no new candidates are looked for).
        poll
            Whether to look for new candidates now.
        """
        index = batch.stop
        if self.watch is not None:
            champion = self._watch_step(counts, index, champion)
        if self.trial is not None:
            champion = self._trial_step(batch, counts, index, champion)
        self._take_candidates(index, recovering=recovering, poll=poll)
        return champion

    def start_pending(self, index: int, champion: Champion, samples: NDArray[np.void]) -> None:
        """Start a test with the oldest queued candidate if no test or watch runs.

        ``samples`` are the recent sampled requests the challenger's adapter is refitted on.
        """
        if self.waiting:
            self._start(self._queue.pop(0), index, champion, samples)

    @property
    def waiting(self) -> bool:
        """Whether a queued candidate can start a test now."""
        return self.trial is None and self.watch is None and bool(self._queue)

    def _trial_step(
        self, batch: RequestBatch, counts: BatchCounts, index: int, champion: Champion
    ) -> Champion:
        trial = self.trial
        assert trial is not None
        decision: AbDecision
        if isinstance(trial.test, PairedSequentialTest):
            assert counts.champion_hits is not None and counts.challenger_hits is not None
            assert counts.live_sampled_hits is not None
            trial.add_baseline(counts.live_sampled_hits)
            skip = min(trial.warmup, int(counts.champion_hits.shape[0]))
            trial.warmup -= skip
            ours, theirs = counts.champion_hits[skip:], counts.challenger_hits[skip:]
            decision = trial.test.update(ours, theirs, first_index=trial.position)
            trial.position += int(ours.shape[0])
        else:
            assert counts.request_hits is not None
            decision = trial.test.update(
                self._arms, counts.request_hits, first_index=trial.position
            )
            trial.position += len(batch)
        if not decision.finished:
            return champion
        return self._decide(trial, decision, index, champion)

    def _decide(
        self, trial: Trial, decision: AbDecision, index: int, champion: Champion
    ) -> Champion:
        details = decision.to_dict()
        details.update(
            challenger_id=trial.challenger_id,
            champion_version_id=champion.version_id,
            started_at=trial.start_index,
            mode=trial.mode,
            sample_rate=self._s.ab_sample_rate if trial.shadow is not None else 1.0,
        )
        self._recorder.decision(
            DecisionRecord(
                kind=decision.decision,  # type: ignore[arg-type]
                request_index=index,
                candidate_id=trial.candidate_id,
                requests_used=decision.requests_used,
                statistic=decision.statistic if np.isfinite(decision.statistic) else None,
                champion_hit_ratio=decision.champion_hit_ratio,
                challenger_hit_ratio=decision.challenger_hit_ratio,
                details=details,
            )
        )
        self.trial = None
        if decision.decision != "adopt":
            return champion
        adopted = Champion("model", trial.challenger_id, trial.adapter_id, trial.proposer)
        self._recorder.champion(adopted, index, "adopt")
        try:
            monitor = DegradationMonitor(
                trial.baseline_bits(),
                tolerance=self._s.rollback_tolerance,
                delta=self._s.rollback_delta,
                confirm=self._s.rollback_confirm,
            )
        except ValueError as exc:
            _log.warning("no degradation watch after the adoption at %d: %s", index, exc)
            return adopted
        self.watch = Watch(monitor, champion, trial.candidate_id, index)
        return adopted

    def _watch_step(self, counts: BatchCounts, index: int, champion: Champion) -> Champion:
        watch = self.watch
        assert watch is not None and counts.live_sampled_hits is not None
        check = watch.monitor.update(counts.live_sampled_hits)
        if check is not None and check.rollback:
            self._recorder.decision(
                DecisionRecord(
                    kind="rollback",
                    request_index=index,
                    candidate_id=watch.candidate_id,
                    requests_used=watch.monitor.requests,
                    statistic=check.drop,
                    champion_hit_ratio=check.baseline_hit_ratio,
                    challenger_hit_ratio=check.window_hit_ratio,
                    details={**check.to_dict(), "adopted_at": watch.adopted_at},
                )
            )
            self._recorder.champion(watch.previous, index, "rollback")
            self.watch = None
            return watch.previous
        if index - watch.adopted_at >= self._s.rollback_watch:
            self.watch = None
        return champion

    # -- operator directives -------------------------------------------------------------------

    def take_directly(self, directory: Path, index: int) -> ModelVersionRecord:
        """Record ``directory`` as a candidate that an operator made champion (no A/B test).

        It is never queued for a test afterwards (and leaves the queue if it waits there).
        """
        sha = manifest_sha256(directory)
        record = next((c for c in self._recorded.values() if c.sha256 == sha), None)
        if record is None:
            record = self._store.add_model_version(
                directory.resolve(),
                sha,
                source="candidate",
                status="directive",
                request_index=index,
            )
            self._recorded[record.id] = record
        self._offered.add(record.id)
        self._queue = [c for c in self._queue if c.id != record.id]
        return record

    def cancel(self, index: int, champion: Champion, why: str) -> None:
        """End a running test (recorded ``inconclusive``, with ``why``) and any watch."""
        trial = self.trial
        if trial is not None:
            decision = trial.test.decision
            self._recorder.decision(
                DecisionRecord(
                    kind="inconclusive",
                    request_index=index,
                    candidate_id=trial.candidate_id,
                    requests_used=decision.requests_used,
                    statistic=decision.statistic if np.isfinite(decision.statistic) else None,
                    champion_hit_ratio=decision.champion_hit_ratio,
                    challenger_hit_ratio=decision.challenger_hit_ratio,
                    details={
                        **decision.to_dict(),
                        "cancelled": why,
                        "challenger_id": trial.challenger_id,
                        "champion_version_id": champion.version_id,
                        "started_at": trial.start_index,
                        "mode": trial.mode,
                    },
                )
            )
            self.trial = None
        self.watch = None

    # -- candidates ----------------------------------------------------------------------------

    def _take_candidates(self, index: int, *, recovering: bool, poll: bool) -> None:
        """Offer the candidates recorded up to ``index``, then (when polling) new ones."""
        for c in self._recorded.values():
            if c.id not in self._offered and (
                c.request_index == index or (not recovering and c.request_index <= index)
            ):
                self._offer(c)
        if recovering or not poll:
            return
        known = {c.sha256 for c in self._recorded.values()}
        for path in self._candidate_dirs():
            sha = manifest_sha256(path)
            if sha in known:
                continue
            record = self._store.add_model_version(
                path.resolve(), sha, source="candidate", status="candidate", request_index=index
            )
            self._recorded[record.id] = record
            known.add(sha)
            self._recorder.arrival()
            self._offer(record)

    def _offer(self, candidate: ModelVersionRecord) -> None:
        self._offered.add(candidate.id)
        self._queue.append(candidate)

    def _candidate_dirs(self) -> list[Path]:
        dirs = list(self._paths)
        watched = self._s.candidate_dir
        if watched is not None and watched.is_dir():
            if (watched / "manifest.json").exists():
                dirs.append(watched)
            else:
                dirs.extend(sorted(p for p in watched.iterdir() if p.is_dir()))
        if self._more is not None:
            dirs.extend(self._more())
        return dirs

    def _start(
        self,
        candidate: ModelVersionRecord,
        index: int,
        champion: Champion,
        samples: NDArray[np.void],
    ) -> None:
        try:
            challenger = self._shop.challenger(candidate, champion, index, samples)
        except CandidateRefusedError as exc:
            _log.warning("%s (the champion keeps running)", exc)
            self._recorder.decision(
                DecisionRecord(
                    kind="refused",
                    request_index=index,
                    candidate_id=candidate.id,
                    details={"error": str(exc), "directory": candidate.directory},
                )
            )
            return
        s = self._s
        test: PairedSequentialTest | TrafficSplitTest
        shadow = None
        warmup = 0
        if s.ab_mode == "shadow":
            test = PairedSequentialTest(
                alpha=s.ab_alpha, max_requests=s.ab_max_requests, min_requests=s.ab_min_requests
            )
            shadow = ShadowPair(self._capacity, s.ab_sample_rate, s.degree)
            warmup = max(WARMUP_CAPACITIES * shadow.capacity, s.rollback_confirm)
        else:
            test = TrafficSplitTest(alpha=s.ab_alpha, max_requests=s.ab_max_requests)
        self.trial = Trial(
            candidate_id=candidate.id,
            challenger_id=challenger.version.id,
            adapter_id=challenger.adapter.id,
            start_index=index,
            mode=s.ab_mode,
            test=test,
            proposer=challenger.proposer,
            shadow=shadow,
            salt=self._encoder.digest64(index),
            warmup=warmup,
        )
