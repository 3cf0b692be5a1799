"""A database outage and its end, on a PostgreSQL cluster of the test's own (tests/pg_cluster.py)
served by a real Vigil server: while the cluster is down every request is 503 with Retry-After
(never a 500), /readyz is 503 and /healthz 200; once it is back the same process serves again
(the pool, the live alert feed and the scheduler recover without a restart), and every reading
acknowledged with a 2xx is in the database."""

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import migrations
from app.clock import utcnow
from app.db import make_engine
from app.models import VitalReading
from app.scheduler import Scheduler
from tests.alerts.test_stream import DANGEROUS, UNITS, _build
from tests.live_server import live_server, open_stream
from tests.pg_cluster import Cluster, throwaway_cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

CALM = {"SYSBP": 118, "DIABP": 76, "PULSE": 72, "TEMP": 36.8}
WAIT_SECONDS = 60  # the longest any step below may take before the test gives up


def _reading(seconds: int, values: dict[str, float]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": (utcnow() - timedelta(minutes=50, seconds=-seconds)).isoformat(),
        "observations": [
            {"code": code, "value": value, "unit": UNITS[code]} for code, value in values.items()
        ],
    }


@dataclass
class Tablet:
    """A bedside tablet posting calm readings in a loop, keeping what each post was answered."""

    url: str
    token: str
    acknowledged: list[str] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # 503s: sent again later
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def post(self, client: httpx.Client, reading: dict[str, Any]) -> httpx.Response:
        return client.post(
            self.url, json=reading, headers={"Authorization": f"Bearer {self.token}"}
        )

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            for second in range(100_000):
                if self.stop.is_set():
                    return
                reading = _reading(second, CALM)
                response = self.post(client, reading)
                if response.status_code in (200, 201):
                    self.acknowledged.append(reading["id"])
                elif (
                    response.status_code == 503
                    and response.headers.get("retry-after") == "5"
                    and response.headers["content-type"] == "application/problem+json"
                ):
                    self.refused.append(reading)
                else:
                    self.unexpected.append(f"{response.status_code} {response.text[:300]}")
                self.stop.wait(0.02)


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        time.sleep(0.05)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as running:
        migrations.upgrade(running.url)
        yield running


def test_an_outage_answers_503_and_the_same_process_recovers(cluster: Cluster):
    built = _build(cluster.url)
    built["engine"].dispose()
    scheduler_engine = make_engine(cluster.url)
    scheduler = Scheduler(sessionmaker(scheduler_engine), 0.2)
    with live_server(cluster.url, alert_feed_poll_seconds="0.5") as base:
        root = base.removesuffix("/api/v1")
        url = f"{base}/dosing-sessions/{built['session_a']}/vital-readings"
        tablet = Tablet(url, built["device_a"])
        poster = threading.Thread(target=tablet.run, name="tablet", daemon=True)
        scheduler.start()
        try:
            with open_stream(base, built["monitor"]) as stream, httpx.Client(timeout=30) as http:
                stream.next_of("ready")
                poster.start()
                _until(lambda: len(tablet.acknowledged) >= 5, "five readings acknowledged")
                _until(lambda: scheduler.ticks >= 1, "a scheduler tick")

                cluster.stop()
                _until(lambda: tablet.refused, "a reading refused with 503 and Retry-After")
                refused = tablet.post(http, _reading(0, CALM))
                assert refused.status_code == 503, refused.text
                assert refused.headers["retry-after"] == "5"
                assert "nothing was recorded; send the request again" in refused.json()["detail"]
                not_ready = http.get(f"{root}/readyz")
                assert not_ready.status_code == 503, not_ready.text
                assert not_ready.headers["retry-after"] == "5"
                assert "the database is not answering" in not_ready.json()["detail"]
                assert http.get(f"{root}/healthz").status_code == 200

                cluster.start()
                _until(lambda: http.get(f"{root}/readyz").status_code == 200, "ready again")
                acknowledged_before = len(tablet.acknowledged)
                _until(
                    lambda: len(tablet.acknowledged) >= acknowledged_before + 5,
                    "five more readings acknowledged after the outage",
                )
                ticks = scheduler.ticks
                _until(lambda: scheduler.ticks > ticks + 1, "the scheduler ticking again")

                # the live feed of this process delivers alerts again
                dangerous = tablet.post(http, _reading(0, DANGEROUS))
                assert dangerous.status_code == 201, dangerous.text
                assert stream.next_of("alert.opened", "alert.updated", timeout=30)
        finally:
            tablet.stop.set()
            poster.join(30)
            scheduler.stop()
            scheduler_engine.dispose()

        assert tablet.unexpected == []
        with httpx.Client(timeout=30) as http:  # what was refused, sent again, is taken
            for reading in tablet.refused:
                assert tablet.post(http, reading).status_code in (200, 201)

    engine = make_engine(cluster.url)
    try:
        with Session(engine) as session:
            stored = set(session.scalars(select(VitalReading.id)))
    finally:
        engine.dispose()
    sent = {uuid.UUID(i) for i in tablet.acknowledged + [r["id"] for r in tablet.refused]}
    assert sent - stored == set()  # nothing acknowledged (or sent again) is lost
