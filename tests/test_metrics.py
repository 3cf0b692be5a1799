"""GET /metrics, as Prometheus scrapes it: what it counts after a reading is posted and an alert
raised and acknowledged, the request metrics by route template, the database's alert counts,
and VIGIL_METRICS_TOKEN. (Summed across workers: tests/cli/test_serve_metrics.py.)"""

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.config import get_settings
from app.main import create_app
from app.models import DosingSession
from app.notifications import dispatcher
from tests.factories.alerts import PinnedClock, make_alert
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study
from tests.vitals.readings import reading

READINGS_ROUTE = "/api/v1/dosing-sessions/{dosing_session_id}/vital-readings"


def scrape(
    client: TestClient, **headers: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scraping_the_test_transaction(api: FastAPI, db: Session) -> Iterator[None]:
    """The database counts read on the test's connection (what its requests committed)."""
    saved = api.state.metrics_connect
    api.state.metrics_connect = lambda: nullcontext(db.connection())
    yield
    api.state.metrics_connect = saved


@pytest.fixture
def dosing_session(db: Session) -> DosingSession:
    participant = make_participant(db, make_site(db, make_study(db)), stage="randomised")
    session = make_dosing_session(db, participant, initial_dose_mg=80)
    db.commit()  # stored before the first scrape, so the counts before it include it
    return session


def test_a_posted_reading_counts_once_and_its_request_by_route_template(
    client, dosing_session, scraping_the_test_transaction
):
    before = scrape(client)
    sent = reading(60)
    url = f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings"
    posted = client.post(url, json=sent)
    assert posted.status_code == 201, posted.text
    again = client.post(url, json=sent)  # the same reading again: a duplicate, stored once
    assert again.status_code == 200, again.text
    after = scrape(client)

    ingested = "vigil_readings_ingested_total"
    assert value(after, ingested) - value(before, ingested) == 1
    route = {"method": "POST", "route": READINGS_ROUTE}
    requests = "vigil_http_requests_total"
    assert (
        value(after, requests, **route, status="2xx")
        - value(before, requests, **route, status="2xx")
        == 2
    )
    durations = "vigil_http_request_duration_seconds_count"
    assert (
        value(after, durations, **route, status="2xx")
        - value(before, durations, **route, status="2xx")
        == 2
    )
    # the path as sent (the session's id) is in no label; the scrapes themselves are not counted
    text = client.get("/metrics").text
    assert str(dosing_session.id) not in text
    assert 'route="/metrics"' not in text


def test_a_refused_reading_counts_as_4xx_and_stores_nothing(
    client, dosing_session, scraping_the_test_transaction
):
    before = scrape(client)
    bad = reading(60, measured_at="not a time")
    refused = client.post(f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings", json=bad)
    assert refused.status_code == 422
    after = scrape(client)
    assert value(after, "vigil_readings_ingested_total") == value(
        before, "vigil_readings_ingested_total"
    )
    route = {"method": "POST", "route": READINGS_ROUTE, "status": "4xx"}
    assert (
        value(after, "vigil_http_requests_total", **route)
        - value(before, "vigil_http_requests_total", **route)
        == 1
    )


def test_an_alert_shows_by_severity_and_state_and_its_acknowledgement_is_timed(
    client, db, dosing_session, scraping_the_test_transaction, monkeypatch
):
    pinned = PinnedClock(monkeypatch, T0 + timedelta(minutes=40))
    before = scrape(client)
    alert, _ = make_alert(db, dosing_session, found_at=T0 + timedelta(minutes=35))
    db.commit()
    raised = scrape(client)
    critical_open = {"severity": "critical", "status": "open"}
    assert (
        value(raised, "vigil_alerts", **critical_open)
        - value(before, "vigil_alerts", **critical_open)
        == 1
    )
    assert ("vigil_alerts", frozenset({"severity": "info", "status": "resolved"}.items())) in raised

    pinned.at(T0 + timedelta(minutes=38))  # 3 minutes after the alert's finding
    acknowledged = client.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "seen"})
    assert acknowledged.status_code == 200, acknowledged.text
    after = scrape(client)
    critical_acknowledged = {"severity": "critical", "status": "acknowledged"}
    assert value(after, "vigil_alerts", **critical_open) == value(
        before, "vigil_alerts", **critical_open
    )
    assert (
        value(after, "vigil_alerts", **critical_acknowledged)
        - value(raised, "vigil_alerts", **critical_acknowledged)
        == 1
    )
    waited = "vigil_alert_time_to_acknowledge_seconds"
    critical = {"severity": "critical"}
    assert (
        value(after, f"{waited}_count", **critical) - value(raised, f"{waited}_count", **critical)
        == 1
    )
    assert (
        value(after, f"{waited}_sum", **critical) - value(raised, f"{waited}_sum", **critical)
        == 180
    )
    # in the 300 s bucket and not the 120 s one
    assert (
        value(after, f"{waited}_bucket", **critical, le="300.0")
        - value(raised, f"{waited}_bucket", **critical, le="300.0")
        == 1
    )
    assert value(after, f"{waited}_bucket", **critical, le="120.0") == value(
        raised, f"{waited}_bucket", **critical, le="120.0"
    )


def test_a_refused_acknowledgement_is_not_timed(
    client, db, dosing_session, scraping_the_test_transaction
):
    alert, _ = make_alert(db, dosing_session, found_at=T0 + timedelta(minutes=35))
    db.commit()
    assert client.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={}).status_code == 200
    before = scrape(client)
    twice = client.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={})
    assert twice.status_code == 409
    after = scrape(client)
    name = "vigil_alert_time_to_acknowledge_seconds_count"
    assert value(after, name, severity="critical") == value(before, name, severity="critical")


def test_the_pool_and_the_process_gauges_are_there(client):
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert {"vigil_alert_stream_clients", "vigil_scheduler_leading"} <= names
    assert value(samples, "vigil_scheduler_leading") == 0  # the tests' apps run no scheduler


def test_the_pool_gauges_follow_the_engine(tmp_path):
    from app.db import make_engine

    engine = metrics.watch_pool(make_engine(f"sqlite:///{tmp_path / 'pool.db'}"), "test")
    try:
        assert metrics.POOL_SIZE.labels("test")._value.get() == engine.pool.size()  # type: ignore[attr-defined]
        with engine.connect():
            assert metrics.POOL_CHECKED_OUT.labels("test")._value.get() == 1
        assert metrics.POOL_CHECKED_OUT.labels("test")._value.get() == 0
    finally:
        engine.dispose()


def test_a_database_that_does_not_answer_leaves_its_counts_out_not_the_scrape(api, client):
    saved = api.state.metrics_connect

    def broken():
        from sqlalchemy.exc import OperationalError

        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    api.state.metrics_connect = broken
    try:
        samples = scrape(client)
    finally:
        api.state.metrics_connect = saved
    assert not any(name == "vigil_alerts" for name, _ in samples)
    assert any(name == "vigil_http_requests_total" for name, _ in samples)


@pytest.fixture
def token_app(monkeypatch, engine) -> Iterator[TestClient]:
    monkeypatch.setenv("VIGIL_METRICS_TOKEN", "a-scrape-token-of-some-length")
    get_settings.cache_clear()
    try:
        application = create_app()
    finally:
        get_settings.cache_clear()
    application.state.metrics_connect = engine.connect
    with TestClient(application) as http:
        yield http


def test_with_a_metrics_token_a_scrape_must_bring_it(token_app):
    missing = token_app.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = token_app.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    right = token_app.get(
        "/metrics", headers={"Authorization": "Bearer a-scrape-token-of-some-length"}
    )
    assert right.status_code == 200
    assert "vigil_http_requests_total" in right.text


def test_metrics_are_not_in_the_openapi_document(client):
    assert "/metrics" not in client.get("/api/v1/openapi.json").json()["paths"]


def test_the_outbox_depth_and_the_attempts_show(
    client, db, dosing_session, scraping_the_test_transaction, monkeypatch
):
    PinnedClock(monkeypatch, T0 + timedelta(minutes=40))
    subscribed = client.post(
        "/api/v1/notification-subscriptions",
        json={"channel": "webhook", "url": "http://127.0.0.1:9/hook"},  # nobody listens there
    )
    assert subscribed.status_code == 201, subscribed.text
    webhook_pending = {"channel": "webhook", "status": "pending"}
    before = scrape(client)
    make_alert(db, dosing_session, found_at=T0 + timedelta(minutes=35))
    db.commit()
    queued = scrape(client)
    assert value(queued, "vigil_notification_deliveries", **webhook_pending) == (
        value(before, "vigil_notification_deliveries", **webhook_pending) + 1
    )
    email_dead = frozenset({"channel": "email", "status": "dead"}.items())
    assert ("vigil_notification_deliveries", email_dead) in queued  # shown as 0, not unknown

    failed = {"channel": "webhook", "outcome": "failed"}
    settings = get_settings().model_copy(update={"outbox_timeout_seconds": 1.0})
    (claimed,) = dispatcher.claim(db, T0 + timedelta(minutes=41), settings)
    sender = dispatcher.Dispatcher(sessionmaker(bind=db.connection()), settings)
    monkeypatch.setattr(sender, "_in_transaction", lambda step: step(db))
    assert sender._send(claimed) == "pending"  # refused: tried again later
    after = scrape(client)
    assert value(after, "vigil_notification_attempts_total", **failed) == (
        value(queued, "vigil_notification_attempts_total", **failed) + 1
    )
