"""Prometheus metrics of the API: request counts and latency by route, and registry events.

Each app has its own :class:`prometheus_client.CollectorRegistry` (several apps in one process,
as in tests, do not clash). Routes are labelled by their template (``/v1/models/{version}``),
never by raw path, so customer ids and versions do not become label values.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """The API's metrics in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "predis_api_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "predis_api_request_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.ab_results = Counter(
            "predis_api_ab_results_total",
            "A/B results stored (replays excluded)",
            registry=self.registry,
        )
        self.adoptions = Counter(
            "predis_api_adoptions_total",
            "Champion changes by action",
            ["action"],
            registry=self.registry,
        )
        self.models_published = Counter(
            "predis_api_models_published_total", "Model versions registered", registry=self.registry
        )
        self.artifacts_refused = Counter(
            "predis_api_artifacts_refused_total",
            "Uploaded artifacts refused (unsigned, untrusted key or tampered)",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """Return the exposition text and its content type."""
        return _generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request into :class:`ApiMetrics`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request and record it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
