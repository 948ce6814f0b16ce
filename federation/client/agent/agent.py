"""The long-running customer agent beside a cache node.

Per batch of requests the :class:`CustomerAgent`

1. serves them through the node with the champion's prefetching (:mod:`.serving`); during an
   A/B test the sampled requests also drive the ghost caches;
2. off the serving path: drains the node's sampler (kept for the local store), feeds the drift
   monitor the sampled hit stream, counts the test's outcomes (:mod:`.trial`), watches a newly
   adopted champion for degradation, and looks for candidate global models;
3. reacts: a drift event is recorded, the champion's adapter refitted on recent samples and the
   customer marked as wanting the next federated round; a candidate is verified (refused and
   recorded if bad, the champion keeps running) and tested as a challenger; a decision is
   recorded, an adoption switches the champion, a degradation rolls it back;
4. commits, in ONE transaction, the progress index, counters, champion, adapter reference,
   privacy ledger, test state and every record since the previous commit — every
   ``persist_interval`` requests and after any batch that recorded something.

Crash safety. A kill loses at most the batches since the last commit; nothing they produced was
recorded, and they are served again on restart, so nothing is counted or recorded twice.
Over a replayable source (a trace) with ``warm_restart`` the restarted agent re-runs the whole
recorded history first without recording anything — reusing the recorded adapters and
challengers instead of refitting them — which rebuilds the cache contents, prefetcher tables,
drift windows and ghost caches exactly; the run then ends exactly where an uninterrupted one
would, and the agent checks the re-run against the store. Over a live source the agent resumes
at the stored index with the stored champion, adapter, ledger and test state (ghost caches and
the degradation window included); only the cache contents and the drift windows start afresh.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cache_core.replay import resolve_capacity
from customer_models import KeyEncoder
from federation.client.agent.agent_run import AgentRun
from federation.client.agent.customer_key import customer_encoder
from federation.client.agent.drift_feed import DriftMonitorLike, make_drift_monitor
from federation.client.agent.errors import AgentConfigError
from federation.client.agent.metrics import AgentMetrics
from federation.client.agent.registry_link import RegistryLink
from federation.client.agent.settings import AgentSettings
from federation.client.agent.source import RequestSource
from federation.client.agent.store import AgentStore
from federation.client.agent.summary import AgentSummary

if TYPE_CHECKING:
    from federation.server.api import RegistryClient

_log = logging.getLogger(__name__)


class CustomerAgent:
    """The customer's agent (see the module docstring).

    Parameters
    ----------
    settings
        The agent's settings.
    source
        Where requests come from.
    champion
        What serves on a first start: ``"none"`` (plain LRU), ``"markov2"``, or a model
        directory. A restarted agent serves what its store says.
    candidates
        Candidate global models offered now (model directories).
    encoder
        The customer's key encoder (default: ``$PREDIS_CUSTOMER_SECRET`` or the state
        directory's secret file, created on first use).
    drift_monitor
        Builds the drift monitor from the settings (default :func:`make_drift_monitor`).

    Raises
    ------
    AgentStateError
        If the state directory or store is unusable or belongs to another customer or source.
    AgentConfigError
        If the cache size cannot be resolved for the source.
    """

    def __init__(
        self,
        settings: AgentSettings,
        source: RequestSource,
        *,
        champion: str | Path = "none",
        candidates: Sequence[str | Path] = (),
        encoder: KeyEncoder | None = None,
        drift_monitor: Callable[[AgentSettings], DriftMonitorLike | None] = make_drift_monitor,
    ) -> None:
        self.settings = settings
        self.source = source
        self.metrics = AgentMetrics(settings.customer_id)
        self._store = AgentStore(settings.state_dir, settings.database_url)
        try:
            key = encoder if encoder is not None else customer_encoder(settings.secret_path)
            capacity = _capacity(settings.cache_size, source)
            self._link = _registry_link(settings, self._store, key)
            self._run = AgentRun(
                settings,
                source,
                self._store,
                key,
                capacity,
                self.metrics,
                initial_champion=champion,
                candidates=[Path(c) for c in candidates],
                drift=drift_monitor(settings),
                link=self._link,
            )
        except BaseException:
            self._store.close()
            raise
        if self._link is not None:
            self._link.start()
        if settings.metrics_port is not None:
            self.metrics.serve(settings.metrics_port)

    def __repr__(self) -> str:
        return f"CustomerAgent(customer={self.settings.customer_id!r}, source={self.source!r})"

    @property
    def store(self) -> AgentStore:
        """The agent's local store."""
        return self._store

    @property
    def registry(self) -> RegistryLink | None:
        """The link to the adoption API (``None`` when no ``registry_url`` is configured)."""
        return self._link

    @property
    def position(self) -> int:
        """The next request index to process."""
        return self._run.position

    @property
    def recovering(self) -> bool:
        """Whether the agent is re-running its recorded history (nothing is recorded then)."""
        return self._run.recovering

    @property
    def recovery_consistent(self) -> bool | None:
        """Whether the re-run history matched the store (``None``: nothing was re-run)."""
        return self._run.recovery_consistent

    def run(
        self,
        *,
        max_requests: int | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> AgentSummary:
        """Process the source until it ends, ``max_requests`` are processed, or ``stop`` is set.

        Parameters
        ----------
        max_requests
            Stop at the first batch boundary at or after this request index (batches stay
            aligned, so a later run resumes exactly where an uninterrupted one would be).
        stop
            Checked after every batch; when set, the agent commits and returns.
        progress
            Called with the number of requests of every batch processed.

        Returns
        -------
        AgentSummary
            The state after the run (everything processed is committed).
        """
        run = self._run
        for batch in run.batches():
            if max_requests is not None and batch.start >= max_requests:
                break
            run.step(batch)
            if progress is not None:
                progress(len(batch))
            if stop is not None and stop.is_set() and not run.recovering:
                break
        run.commit()
        return run.summary()

    def close(self) -> None:
        """Stop serving metrics and close the store (the state is as last committed).

        With an adoption API configured, reports still waiting get a few seconds to go out
        (what does not is sent by the next start); the API's answers are recorded first.
        """
        try:
            if self._link is not None:
                self._link.stop(flush_seconds=min(5.0, self.settings.registry_timeout))
                self._run.sync_registry()
        finally:
            self.metrics.close()
            self._store.close()

    def __enter__(self) -> CustomerAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _registry_link(
    settings: AgentSettings, store: AgentStore, encoder: KeyEncoder
) -> RegistryLink | None:
    """Return the link to the adoption API the settings name (``None``: no API)."""
    url = settings.registry_url
    if url is None:
        return None
    from privacy import SigningError, TrustedKeys

    try:
        trusted = TrustedKeys.from_files(settings.registry_trusted_keys)
    except (OSError, SigningError) as exc:
        raise AgentConfigError(f"cannot load the registry's trusted keys: {exc}") from None
    token = settings.registry_bearer()
    ca = settings.registry_ca_file

    def client() -> RegistryClient:
        from federation.server.api import RegistryClient

        return RegistryClient(
            url,
            token,
            trusted=trusted,
            timeout=settings.registry_timeout,
            retries=2,
            max_backoff=5.0,
            verify=ssl.create_default_context(cafile=str(ca)) if ca is not None else True,
        )

    refused = set(store.refused_registry_versions())
    return RegistryLink(
        client,
        store.state_dir,
        encoder,
        settings.customer_id,
        known_refused=refused,
        last_directive=max((r.directive.record_id for r in store.directives()), default=0),
        poll_seconds=settings.registry_poll_seconds,
        max_backoff=settings.registry_max_backoff,
    )


def _capacity(cache_size: str, source: RequestSource) -> int:
    trace = getattr(source, "trace", None)
    if trace is not None:
        return resolve_capacity(cache_size, trace.unique_objects)
    try:
        return resolve_capacity(int(cache_size), 1)
    except ValueError:
        raise AgentConfigError(
            f"cache size {cache_size!r}: a live source needs an object count, not a fraction"
        ) from None
