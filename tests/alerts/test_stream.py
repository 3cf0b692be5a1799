"""The live alert stream (GET /alerts/stream) through a real server on a real, committed
database: what each caller sees, state changes, resuming with Last-Event-ID, credentials checked
while the stream lasts, and (PostgreSQL) alerts committed by another process."""

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import migrations
from app.alerts import stream as stream_module
from app.auth import tokens
from app.clock import utcnow
from app.db import make_engine
from app.models import Alert, AuditRecord, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import BACKENDS, TEST_PASSWORD
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study
from tests.live_server import APPS, live_server, open_stream

DANGEROUS = {"SYSBP": 186, "DIABP": 104, "PULSE": 96, "TEMP": 37.1}
UNITS = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}


@dataclass
class World:
    url: str
    base: str
    engine: Engine
    session_a: uuid.UUID
    session_b: uuid.UUID
    device_a: str
    device_b: str
    clinician_a: str
    clinician_b: str
    monitor: str
    clinician_a_id: uuid.UUID
    minute: int = 0
    measured_at: dict[str, datetime] = field(default_factory=dict)  # of the readings posted

    def reading(self, **values: float) -> dict[str, Any]:
        """A new reading, a minute after the previous one, measured before now."""
        self.minute += 1
        measured_at = utcnow() - timedelta(minutes=50) + timedelta(seconds=self.minute)
        return {
            "id": str(uuid.uuid4()),
            "measured_at": measured_at.isoformat(),
            "observations": [
                {"code": code, "value": value, "unit": UNITS[code]}
                for code, value in {**DANGEROUS, **values}.items()
            ],
        }

    def post(self, device: str, session_id: uuid.UUID, **values: float) -> str:
        reading = self.reading(**values)
        response = httpx.post(
            f"{self.base}/dosing-sessions/{session_id}/vital-readings",
            json=reading,
            headers={"Authorization": f"Bearer {device}"},
        )
        assert response.status_code in (200, 201), response.text
        self.measured_at[reading["id"]] = datetime.fromisoformat(reading["measured_at"])
        return reading["id"]

    def token(self, username: str) -> str:
        with Session(self.engine) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            _, plaintext = tokens.issue(session, user, tokens.TokenKind.API)
            session.commit()
        return plaintext


def _build(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    started = utcnow() - timedelta(hours=1)
    with Session(engine) as session:
        session.info["actor"] = "test"
        study = make_study(session)
        site_a, site_b = make_site(session, study, "S01"), make_site(session, study, "S02")
        made: dict[str, Any] = {}
        for key, site, number in (("a", site_a, "01-001"), ("b", site_b, "02-001")):
            participant = make_participant(session, site, number, stage="randomised")
            dosing = make_dosing_session(
                session, participant, started_at=started, initial_dose_mg=80
            )
            made[f"session_{key}"] = dosing.id
            _, made[f"device_{key}"] = users.create_device(session, f"tablet-{key}", site.id)
        for name, role, sites in (
            ("clinician_a", Role.CLINICIAN, [site_a.id]),
            ("clinician_b", Role.CLINICIAN, [site_b.id]),
            ("monitor", Role.MEDICAL_MONITOR, []),
        ):
            user = users.create_user(
                session,
                username=name.replace("_", "-"),
                display_name=name,
                role=role,
                password=TEST_PASSWORD,
                site_ids=sites,
            )
            _, made[name] = tokens.issue(session, user, tokens.TokenKind.API)
            made[f"{name}_id"] = user.id
        session.commit()
    del made["monitor_id"], made["clinician_b_id"]
    return {"engine": engine, **made}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[World]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    built = _build(url)
    # the feed's own poll is slow here, so only the wake-ups can explain a prompt delivery
    with live_server(url, alert_feed_poll_seconds="30") as base:
        yield World(url=url, base=base, **built)
    built["engine"].dispose()


def _alert_of(event: Any) -> dict[str, Any]:
    return event.data["alert"]


def _critical(stream: Any) -> Any:
    """The next opened or updated critical alert (a dangerous reading raises several alerts)."""
    for _ in range(50):
        event = stream.next_of("alert.opened", "alert.updated")
        if _alert_of(event)["severity"] == "critical":
            return event
    raise AssertionError("no critical alert")


def test_each_clinician_sees_the_alerts_of_their_own_sites_as_they_happen(world: World):
    with (
        open_stream(world.base, world.clinician_a) as a,
        open_stream(world.base, world.clinician_b) as b,
        open_stream(world.base, world.monitor) as monitor,
    ):
        for stream in (a, b, monitor):
            ready = stream.next()
            assert ready.event == "ready" and int(ready.id) == ready.data["last_event_id"]
        reading_a = world.post(world.device_a, world.session_a)
        reading_b = world.post(world.device_b, world.session_b)

        seen_a = _critical(a)
        assert _alert_of(seen_a)["dosing_session_id"] == str(world.session_a)
        assert reading_a in _alert_of(seen_a)["finding"]["evidence"]
        assert "186 mmHg" in _alert_of(seen_a)["message"]
        # site S02's clinician gets S02's alert and never S01's (it was committed first)
        seen_b = b.next_of("alert.opened", "alert.updated")
        assert _alert_of(seen_b)["dosing_session_id"] == str(world.session_b)
        assert reading_b in _alert_of(seen_b)["finding"]["evidence"]
        assert all(_alert_of(e)["site_id"] == _alert_of(seen_b)["site_id"] for e in b.quiet(0.5))
        assert all(_alert_of(e)["site_id"] == _alert_of(seen_a)["site_id"] for e in a.quiet(0.1))
        # the medical monitor sees the whole study
        sessions = set()
        for _ in range(20):
            event = monitor.next_of("alert.opened", "alert.updated")
            sessions.add(_alert_of(event)["dosing_session_id"])
            if len(sessions) == 2:
                break
        assert sessions == {str(world.session_a), str(world.session_b)}


def test_an_acknowledgement_and_a_resolution_are_streamed(world: World):
    world.post(world.device_a, world.session_a)
    with Session(world.engine) as session:
        alert = session.scalars(
            select(Alert).where(Alert.dosing_session_id == world.session_a, Alert.status == "open")
        ).first()
        assert alert is not None
    headers = {"Authorization": f"Bearer {world.clinician_a}"}
    with open_stream(world.base, world.clinician_a) as a:
        a.next_of("ready")
        response = httpx.post(
            f"{world.base}/alerts/{alert.id}/acknowledge",
            json={"note": "Seen; repeating the BP in 5 minutes"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        acknowledged = a.next_of("alert.acknowledged")
        assert acknowledged.data["changes"]["status"] == "acknowledged"
        assert _alert_of(acknowledged)["acknowledged_by_id"] == str(world.clinician_a_id)
        assert _alert_of(acknowledged)["acknowledgement_note"].startswith("Seen;")
        assert acknowledged.data["actor"] == "clinician:clinician-a"
        response = httpx.post(
            f"{world.base}/alerts/{alert.id}/resolve",
            json={"resolution": "BP 150/92 on recheck; observed"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        resolved = a.next_of("alert.resolved")
        assert int(resolved.id) > int(acknowledged.id)
        assert _alert_of(resolved)["status"] == "resolved"


def _evidence(world: World, events: list[Any]) -> set[str]:
    """The readings behind each change as it was made (``alert`` is the alert as it is now): the
    one a new finding names, or the later one a count's ``last_found_at`` dates."""
    named = {
        ref for e in events for ref in e.data["changes"].get("finding", {}).get("evidence", [])
    }
    dated = {
        datetime.fromisoformat(e.data["changes"]["last_found_at"])
        for e in events
        if "last_found_at" in e.data["changes"]
    }
    return named | {ref for ref, at in world.measured_at.items() if at in dated}


def test_a_reconnecting_client_receives_what_it_missed_in_order(world: World):
    with open_stream(world.base, world.clinician_a) as first:
        ready = first.next_of("ready")
    missed = [world.post(world.device_a, world.session_a) for _ in range(3)]
    with open_stream(world.base, world.clinician_a, last_event_id=ready.id) as again:
        assert again.next_of("ready").id == ready.id
        caught_up = again.quiet(1.0)
    ids = [int(e.id) for e in caught_up]
    assert ids and ids == sorted(set(ids)) and ids[0] > int(ready.id)
    assert set(missed) <= _evidence(world, caught_up)
    # ?after= does the same for clients that cannot set the header
    with open_stream(world.base, world.clinician_a, params={"after": ready.id}) as same:
        same.next_of("ready")
        assert [e.id for e in same.quiet(1.0)] == [e.id for e in caught_up]
    # resuming from the last event seen repeats nothing: every event after it is new
    with open_stream(world.base, world.clinician_a, last_event_id=caught_up[-1].id) as resumed:
        resumed.next_of("ready")
        assert resumed.quiet(0.5) == []
        fresh = world.post(world.device_a, world.session_a)
        events = resumed.quiet(1.0)
    assert all(int(e.id) > ids[-1] for e in events)
    assert fresh in _evidence(world, events)


def test_another_sites_events_are_not_replayed_on_resume(world: World):
    with open_stream(world.base, world.clinician_b) as first:
        ready = first.next_of("ready")
    world.post(world.device_a, world.session_a)
    world.post(world.device_b, world.session_b)
    with open_stream(world.base, world.clinician_b, last_event_id=ready.id) as again:
        again.next_of("ready")
        event = again.next_of("alert.opened", "alert.updated")
        assert _alert_of(event)["dosing_session_id"] == str(world.session_b)


@pytest.mark.parametrize("bad", ["yesterday", "-4", "999999999"])
def test_a_last_event_id_that_is_not_one_of_ours_is_refused(world: World, bad: str):
    response = httpx.get(
        f"{world.base}/alerts/stream",
        headers={"Authorization": f"Bearer {world.clinician_a}", "Last-Event-ID": bad},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "Last-Event-ID" in response.json()["detail"]


def test_a_device_may_not_listen_and_nobody_anonymous(world: World):
    device = httpx.get(
        f"{world.base}/alerts/stream", headers={"Authorization": f"Bearer {world.device_a}"}
    )
    assert device.status_code == 403
    assert httpx.get(f"{world.base}/alerts/stream").status_code == 401


def test_streams_that_end_leave_nothing_behind(world: World):
    for _ in range(3):
        with open_stream(world.base, world.clinician_a) as stream:
            stream.next_of("ready")
    feed = APPS[world.base].state.alert_feed
    deadline = time.monotonic() + 5
    while feed.subscribers:
        assert time.monotonic() < deadline, f"{feed.subscribers} subscriptions left behind"
        time.sleep(0.05)


def test_a_revoked_token_ends_the_stream(world: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(stream_module, "RECHECK_SECONDS", 0.3)
    token = world.token("clinician-a")
    with open_stream(world.base, token) as stream:
        stream.next_of("ready")
        with Session(world.engine) as session:
            found = tokens.resolve(session, token)
            assert found is not None
            found.token.revoked_at = utcnow()
            session.commit()
        error = stream.next_of("error", timeout=5)
        assert error.data["status"] == 401
        assert "sign in again" in error.data["detail"]
        assert stream.ended(timeout=5)


def test_an_alert_committed_by_another_process_reaches_the_stream(world: World):
    """Another process (a second server, the scheduler of another worker) acknowledges an
    alert. On PostgreSQL its NOTIFY wakes this server's feed at once; on SQLite the feed finds it
    at its next poll (30 s in this module's server), so that leg only checks that nothing is
    delivered out of thin air before the commit."""
    world.post(world.device_a, world.session_a)
    with Session(world.engine) as session:
        alert_id = session.scalars(
            select(Alert.id).where(
                Alert.dosing_session_id == world.session_a, Alert.status == "open"
            )
        ).first()
    assert alert_id is not None
    script = textwrap.dedent(
        f"""
        import uuid
        from sqlalchemy.orm import Session
        from app import listeners
        from app.alerts import service
        from app.db import make_engine
        from app.models import Alert
        listeners.install()
        with Session(make_engine({world.url!r})) as session:
            session.info["actor"] = "clinician:elsewhere"
            alert = session.get(Alert, uuid.UUID({str(alert_id)!r}))
            service.acknowledge(session, alert, uuid.UUID({str(world.clinician_a_id)!r}), "seen")
            session.commit()
        """
    )
    with open_stream(world.base, world.clinician_a) as stream:
        stream.next_of("ready")
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
        committed_at = datetime.now().astimezone()
        if world.engine.dialect.name != "postgresql":
            return
        event = stream.next_of("alert.acknowledged", timeout=5)
        assert _alert_of(event)["id"] == str(alert_id)
        assert event.data["actor"] == "clinician:elsewhere"
        assert datetime.now().astimezone() - committed_at < timedelta(seconds=5)


def test_the_stream_ids_are_the_alert_changes_in_the_audit_trail(world: World):
    """An event's id is the audit record of its alert change: the trail is the event log."""
    with open_stream(world.base, world.monitor) as stream:
        stream.next_of("ready")
        world.post(world.device_b, world.session_b)
        event = stream.next_of("alert.opened", "alert.updated")
    with Session(world.engine) as session:
        record = session.scalars(
            select(AuditRecord).where(AuditRecord.sequence == int(event.id))
        ).one()
    assert (record.entity_type, record.entity_id) == ("alerts", _alert_of(event)["id"])
    assert event.data["changes"] == record.after
