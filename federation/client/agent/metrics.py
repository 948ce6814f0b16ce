"""Prometheus metrics of one agent, in its own registry (optionally served over HTTP).

Every series carries a ``customer`` label. Gauges are set from the agent's cumulative state (not
incremented), so a restarted agent that re-runs its recorded history reports the same values as
one that never stopped.
"""

from __future__ import annotations

import math
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, start_http_server

_PREFIX = "predis_agent"


class AgentMetrics:
    """The agent's gauges in a per-agent :class:`~prometheus_client.CollectorRegistry`.

    Parameters
    ----------
    customer_id
        Value of the ``customer`` label.
    registry
        Registry to register in (a new one by default).
    """

    def __init__(self, customer_id: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._customer = customer_id
        self._server: tuple[WSGIServer, Thread] | None = None

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"{_PREFIX}_{name}", doc, ("customer", *labels), registry=self.registry)

        self.requests = gauge("requests", "Requests processed (next request index).")
        self.hit_ratio = gauge("hit_ratio", "Hit ratio of the live cache over all requests.")
        self.batch_hit_ratio = gauge("batch_hit_ratio", "Hit ratio of the last batch.")
        self.prefetch_precision = gauge(
            "prefetch_precision", "Share of prefetched objects hit before eviction."
        )
        self.prefetches_per_request = gauge(
            "prefetches_per_request", "Prefetches issued per request."
        )
        self.drift_events = gauge("drift_events", "Drift events recorded, by detector.", "detector")
        self.drift_statistic = gauge(
            "drift_statistic", "Statistic of the last drift event, by detector.", "detector"
        )
        self.abtest_active = gauge("abtest_active", "1 while an A/B test runs.")
        self.abtest_statistic = gauge("abtest_statistic", "Log e-value of the running A/B test.")
        self.abtest_requests = gauge("abtest_requests", "Requests counted by the running test.")
        self.decisions = gauge("decisions", "Decisions recorded, by kind.", "kind")
        self.champion_version = gauge(
            "champion_version", "Model version id of the champion (0: not a learned model)."
        )
        self.watching = gauge("degradation_watch", "1 while a new champion is watched.")
        self.epsilon_spent = gauge("epsilon_spent", "Privacy ε spent by the customer (ledger).")
        self.wants_round = gauge("wants_round", "1 when the customer asks for a federated round.")
        self.registry_reachable = gauge(
            "registry_reachable", "1 if the adoption API answered the last try, 0 if not."
        )
        self.registry_reports_waiting = gauge(
            "registry_reports_waiting", "Reports (A/B results, adoptions) not yet sent to the API."
        )
        self.registry_refused = gauge(
            "registry_refused", "Registry versions refused (verification or model checks failed)."
        )

    def __repr__(self) -> str:
        return f"AgentMetrics(customer={self._customer!r})"

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` of this registry on ``addr:port`` (a daemon thread)."""
        self._server = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        """Stop the HTTP server, if one runs."""
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            thread.join(timeout=5)
            self._server = None

    def set(self, gauge: Gauge, value: float, *labels: str) -> None:
        """Set ``gauge`` (for this customer and ``labels``) to ``value`` (NaN when unknown)."""
        gauge.labels(self._customer, *labels).set(value if math.isfinite(value) else math.nan)
