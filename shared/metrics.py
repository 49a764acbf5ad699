"""Prometheus metrics with conventional names, shared by every service (one process, one service).

Counters and histograms move as work happens; gauges that need a query (relay lag, consumer lag, pool
use) are refreshed when ``/metrics`` is scraped.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from shared.asgi import ServiceMiddleware

HTTP_REQUESTS = Counter("washfin_http_requests_total", "HTTP requests handled",
                        ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("washfin_http_request_duration_seconds", "HTTP request latency",
                         ["service", "method", "route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
EVENTS_APPENDED = Counter("washfin_events_appended_total", "Events appended to the event store",
                          ["service", "type"])
RELAY_PUBLISHED = Counter("washfin_relay_published_total", "Events the relay published to Kafka (acked)",
                          ["service", "topic"])
RELAY_LAG = Gauge("washfin_relay_lag_events", "Events stored but not yet published", ["service"])
CONSUMER_APPLIED = Counter("washfin_consumer_events_total", "Events a consumer handled, by outcome",
                           ["consumer", "outcome"])
CONSUMER_BATCH_SECONDS = Histogram("washfin_consumer_batch_duration_seconds",
                                   "Time to apply and commit one batch", ["consumer"],
                                   buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
CONSUMER_LAG = Gauge("washfin_consumer_lag_events", "Events in the source not yet applied",
                     ["consumer", "source", "partition"])
DEAD_LETTERS = Gauge("washfin_dead_letters_open", "Dead letters not yet replayed", ["consumer"])
AUTH_FAILURES = Counter("washfin_auth_failures_total",
                        "Requests refused for their API key (refused: well-formed but unknown, expired, revoked "
                        "or wrong; malformed; throttled: 429 after too many failures)", ["service", "outcome"])
DB_POOL = Gauge("washfin_db_pool_connections", "Database pool connections", ["service", "state"])


def install_http_metrics(app: FastAPI, service: str) -> None:
    """Count and time every request by its route template (not its raw path: ids would explode labels)."""
    app.add_middleware(HttpMetrics, service=service)


class HttpMetrics(ServiceMiddleware):
    """The ASGI middleware of ``install_http_metrics``."""

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            if template != "/metrics":
                method = scope["method"]
                HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
                HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            await runtime.refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
