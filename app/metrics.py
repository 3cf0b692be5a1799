"""Prometheus metrics, served at ``GET /metrics`` (docs/operations.md lists every one).

Only counts and durations: no metric has a label that could name a person, a record or a path
as sent (routes are their templates, as in the request log). Three kinds:

- this process's counters, histograms and gauges, changed where things happen: requests (by the
  pure ASGI ``HttpMetrics``), readings stored and alerts acknowledged (recorded when their
  transaction commits: ``after_commit``), live streams open, scheduler leadership, pool use;
- the database's counts (``DATABASE_GAUGES``), read when Prometheus scrapes, so every process
  answers the same. A count another feature needs is one more ``DatabaseGauge`` in that list;
- under ``vigil serve --workers N`` the processes' own metrics are summed: `vigil serve` points
  PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start, each worker writes its
  values there (prometheus-client's multiprocess mode) and a scrape of any worker reads them
  all. Gauges say how (``livesum``: the sum over the workers alive).

With VIGIL_METRICS_TOKEN set, a scrape must send ``Authorization: Bearer <token>``.
"""

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import problem
from app.models.alert import AlertSeverity, AlertStatus
from app.models.notification import Channel, DeliveryStatus
from app.request_log import route_template

log = logging.getLogger("vigil.metrics")

PATH = "/metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "vigil_http_requests",
    "Requests answered, by method, route template and status class (2xx, 4xx, ...)",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "vigil_http_request_duration_seconds",
    "Seconds from a request's arrival to its status line: a write's status line is sent after "
    "its commit; a stream's (the live alert stream, an export) when it starts",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
READINGS_INGESTED = Counter(
    "vigil_readings_ingested",
    "Vital readings stored (committed), through the API and FHIR; duplicates and refusals are "
    "not counted",
)
NOTIFICATION_ATTEMPTS = Counter(
    "vigil_notification_attempts",
    "Attempts to send an alert notification, by channel and outcome (delivered, failed)",
    ["channel", "outcome"],
)
TIME_TO_ACKNOWLEDGE = Histogram(
    "vigil_alert_time_to_acknowledge_seconds",
    "Seconds from an alert reaching its severity (its first occurrence at that severity) to "
    "its acknowledgement, by severity",
    ["severity"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)
ALERT_STREAMS = Gauge(
    "vigil_alert_stream_clients",
    "Live alert streams (GET /api/v1/alerts/stream) open",
    multiprocess_mode="livesum",
)
SCHEDULER_LEADING = Gauge(
    "vigil_scheduler_leading",
    "Processes leading the scheduler (1 is right; 0: the time-driven checks are not running)",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "vigil_db_pool_checked_out",
    "Database connections in use, by pool (main; reader: the live feed's and probes' on SQLite)",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "vigil_db_pool_size",
    "Connections each pool keeps (beyond them it may open its overflow), by pool",
    ["pool"],
    multiprocess_mode="livesum",
)


# --- counted when the transaction commits ------------------------------------------------------

_PENDING = "metrics_after_commit"


def after_commit(session: Session, record: Callable[[], None]) -> None:
    """Call ``record`` once ``session``'s transaction commits; never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(record)


def count_readings(session: Session, stored: int) -> None:
    after_commit(session, lambda: READINGS_INGESTED.inc(stored))


def observe_acknowledgement(session: Session, severity: str, seconds: float) -> None:
    after_commit(session, lambda: TIME_TO_ACKNOWLEDGE.labels(severity).observe(max(0.0, seconds)))


# A savepoint's release or rollback dispatches the same events as the transaction's: only the
# outermost transaction's count (as in app/events/signals.py).


def _record_pending(session: Session) -> None:
    if not session.in_nested_transaction():
        for record in session.info.pop(_PENDING, ()):
            record()


def _forget_pending(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_PENDING, None)


SESSION_LISTENERS = (("after_commit", _record_pending), ("after_rollback", _forget_pending))


# --- the connection pools ----------------------------------------------------------------------


def watch_pool(engine: Engine, name: str) -> Engine:
    """Keep ``vigil_db_pool_*{pool=name}`` up to date for ``engine``'s pool (a queue pool;
    others, such as an in-memory SQLite database's, have no size to show)."""
    pool: Any = engine.pool
    if not (hasattr(pool, "size") and hasattr(pool, "checkedout")):
        return engine
    POOL_SIZE.labels(name).set(pool.size())
    checked_out = POOL_CHECKED_OUT.labels(name)
    event.listen(engine, "checkout", lambda *_: checked_out.inc())
    event.listen(engine, "checkin", lambda *_: checked_out.dec())
    return engine


# --- counts read from the database at scrape time -----------------------------------------------


@dataclass(frozen=True)
class DatabaseGauge:
    """A gauge read from the database at each scrape: ``query`` returns one row per series,
    its label values in ``labels`` order, then the value. ``zeros`` are label values shown as 0
    when the query has no row for them (so a dashboard sees "none", not "unknown")."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    query: str
    zeros: tuple[tuple[str, ...], ...] = ()


DATABASE_GAUGES: list[DatabaseGauge] = [
    DatabaseGauge(
        "vigil_alerts",
        "Alerts by severity and status (open, acknowledged, resolved), from the database",
        ("severity", "status"),
        "SELECT severity, status, count(*) FROM alerts GROUP BY severity, status",
        zeros=tuple((s.value, t.value) for s in AlertSeverity for t in AlertStatus),
    ),
    DatabaseGauge(
        "vigil_notification_deliveries",
        "Alert notifications by channel and status: pending is the outbox's depth (due or "
        "waiting to be tried again), dead the ones every attempt failed for (app/notifications/)",
        ("channel", "status"),
        "SELECT s.channel, d.status, count(*) FROM notification_deliveries d "
        "JOIN notification_subscriptions s ON s.id = d.subscription_id "
        "GROUP BY s.channel, d.status",
        zeros=tuple((c.value, t.value) for c in Channel for t in DeliveryStatus),
    ),
]

Connect = Callable[[], AbstractContextManager[Connection]]


class DatabaseGauges:
    """The collector of ``gauges``, each scrape on a connection from ``connect``. A database
    that does not answer leaves them out of that scrape (logged), the rest is still served."""

    def __init__(self, connect: Connect, gauges: Iterable[DatabaseGauge]) -> None:
        self.connect = connect
        self.gauges = list(gauges)

    def collect(self) -> Iterator[Metric]:
        try:
            with self.connect() as connection:
                read = [(g, connection.execute(text(g.query)).all()) for g in self.gauges]
        except SQLAlchemyError as exc:
            log.warning("metrics: the database's counts are left out of this scrape (%s)", exc)
            return
        for gauge, rows in read:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            values: dict[tuple[str, ...], float] = dict.fromkeys(gauge.zeros, 0.0)
            for row in rows:
                values[tuple(str(label) for label in row[:-1])] = float(row[-1])
            for series, value in values.items():
                family.add_metric(list(series), value)
            yield family


class _ThisProcess:
    """The metrics of this process's default registry (one process: no multiprocess dir)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(connect: Connect) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.MultiProcessCollector(registry)  # every worker's, the dead ones' counters
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseGauges(connect, DATABASE_GAUGES))
    return generate_latest(registry)


# --- HTTP --------------------------------------------------------------------------------------


class HttpMetrics:
    """Counts and times every request but the scrapes, when its status line goes out (500 if
    an error escapes first). Pure ASGI: a streamed answer is neither buffered nor held."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            method = scope["method"] if scope["method"] in METHODS else "other"
            labels = (method, route_template(scope), f"{status // 100}xx")
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_DURATION.labels(*labels).observe(time.perf_counter() - started)

        async def send_observing(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observing)
        finally:
            if not observed:
                observe(500)


def install(application: Starlette, settings: Settings, connect: Connect) -> None:
    """``GET /metrics`` (not in the OpenAPI document: it is for Prometheus, not a client), the
    request metrics' middleware and the commit listeners. ``application.state.metrics_connect``
    is where the database counts are read (tests put their transaction's connection there)."""
    for name, listener in SESSION_LISTENERS:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
    application.state.metrics_connect = connect
    token = settings.metrics_token

    async def metrics(request: Request) -> Response:
        if token is not None and not _bearer_is(request, token):
            refused = problem(
                401,
                "Unauthorized",
                "GET /metrics needs Authorization: Bearer and the token of VIGIL_METRICS_TOKEN",
                "unauthorized",
                PATH,
            )
            refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
        body = await run_in_threadpool(exposition, request.app.state.metrics_connect)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    application.add_route(PATH, metrics, methods=["GET"], include_in_schema=False)
    application.add_middleware(HttpMetrics)


def _bearer_is(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
