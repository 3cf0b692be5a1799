"""A device's clock offset, estimated from its requests' X-Sent-At and Date headers; readings of
a device off by more than VIGIL_CLOCK_SKEW_SECONDS are stored as reported, flagged, and raise a
device_clock alert; lateness is judged on the corrected time (measured_at less the offset)."""

import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.alerts import evaluation
from app.models import Alert, DeviceClock, DosingSession, Participant, VitalReading
from app.protocols.service import definition_of
from app.rules.horizon import reading_window
from app.sessions.snapshot import WINDOW_MARGIN, _readings
from app.users.service import create_device
from tests.alerts.test_raising import reading
from tests.auth.accounts import bearer
from tests.factories.dosing import T0

DEVICES = "/api/v1/devices"
NOW = T0 + timedelta(minutes=60)


class Pinned:
    def __init__(self) -> None:
        self.now = NOW

    def at(self, when: datetime) -> None:
        self.now = when


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> Pinned:
    """app.clock.utcnow, and every `from app.clock import utcnow` taken of it, answer .now."""
    pinned = Pinned()
    real = clock.utcnow
    for name, module in list(sys.modules.items()):
        if (name == "app" or name.startswith("app.")) and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", lambda: pinned.now)
    return pinned


@pytest.fixture
def admin_headers(db, admin):
    """Signed in for the pinned clock's day."""
    return bearer(db, admin, ttl=timedelta(days=3650))


@pytest.fixture
def device(db: Session, dosing_session: DosingSession) -> Callable[..., dict[str, str]]:
    """A device at the session's site; ``device("name")`` is its Authorization header."""
    site_id = db.get_one(Participant, dosing_session.participant_id).site_id

    def make(name: str = "tablet-1") -> dict[str, str]:
        _, token = create_device(db, name, site_id)
        return {"Authorization": f"Bearer {token}"}

    return make


def _sent(offset_seconds: float) -> dict[str, str]:
    return {"X-Sent-At": (NOW + timedelta(seconds=offset_seconds)).isoformat()}


def _date(at: datetime) -> dict[str, str]:
    return {"Date": format_datetime(at, usegmt=True)}


def _clock_of(http_client, admin_headers, name: str) -> dict[str, Any] | None:
    listed = http_client.get(DEVICES, headers=admin_headers).json()["items"]
    return next(d for d in listed if d["name"] == name)["clock"]


def _post(http_client, dosing_session, headers, body):
    return http_client.post(
        f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings", json=body, headers=headers
    )


# --- estimating the offset ----------------------------------------------------------------------


def test_the_offset_comes_from_x_sent_at_and_from_the_date_header(
    http_client, admin_headers, device, pinned
):
    ahead = device("tablet-ahead")
    behind = device("tablet-behind")
    silent = device("tablet-silent")
    route = "/api/v1/devices/me/dosing-sessions"
    assert http_client.get(route, headers={**ahead, **_sent(90.25)}).status_code == 200
    http_client.get(route, headers={**behind, **_date(NOW - timedelta(seconds=120))})
    http_client.get(route, headers={**silent, "Date": "not a date", "X-Sent-At": "yesterday"})

    ahead_clock = _clock_of(http_client, admin_headers, "tablet-ahead")
    assert ahead_clock["offset_seconds"] == 90.25
    assert datetime.fromisoformat(ahead_clock["measured_at"]) == NOW
    assert ahead_clock["beyond_tolerance"] is False
    assert _clock_of(http_client, admin_headers, "tablet-behind")["offset_seconds"] == -120
    assert _clock_of(http_client, admin_headers, "tablet-silent") is None


def test_x_sent_at_wins_over_date_and_the_estimate_is_a_median(
    http_client, db, admin_headers, device, pinned
):
    headers = device()
    route = "/api/v1/devices/me/dosing-sessions"
    both = {**_date(NOW + timedelta(seconds=30)), **_sent(10)}
    http_client.get(route, headers={**headers, **both})
    assert _clock_of(http_client, admin_headers, "tablet-1")["offset_seconds"] == 10
    for minutes, offset in ((2, 600), (4, 12)):  # one request held up in a queue
        pinned.at(NOW + timedelta(minutes=minutes))
        sent = {"X-Sent-At": (pinned.now + timedelta(seconds=offset)).isoformat()}
        http_client.get(route, headers={**headers, **sent})
    found = db.scalars(select(DeviceClock)).one()
    assert found.samples == [10, 600, 12]
    assert _clock_of(http_client, admin_headers, "tablet-1")["offset_seconds"] == 12
    # within a minute and close to the estimate: nothing written
    pinned.at(NOW + timedelta(minutes=4, seconds=30))
    sent = {"X-Sent-At": (pinned.now + timedelta(seconds=12.5)).isoformat()}
    http_client.get(route, headers={**headers, **sent})
    db.refresh(found)
    assert found.samples == [10, 600, 12]


# --- flagging, and lateness on the corrected time -----------------------------------------------


def test_a_reading_from_a_device_ten_minutes_fast_is_stored_as_reported_and_flagged(
    http_client, db, device, dosing_session, pinned
):
    headers = {**device(), **_sent(600)}
    measured = NOW + timedelta(minutes=10)  # the device's clock: ten minutes in the future
    stored = _post(http_client, dosing_session, headers, reading(measured))
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert datetime.fromisoformat(body["measured_at"]) == measured  # as the device reported it
    assert datetime.fromisoformat(body["received_at"]) == NOW
    assert body["device_clock_offset_seconds"] == 600
    assert body["device_clock_flagged"] is True

    [alert] = db.scalars(select(Alert).where(Alert.kind == "device_clock")).all()
    assert alert.dosing_session_id == dosing_session.id
    assert alert.severity == "warning" and alert.status == "open"
    assert "10 min ahead of the server's clock" in alert.message
    assert "Set the device's clock" in alert.message
    assert alert.finding["evidence"] == [body["id"]]
    # the next flagged reading updates that alert
    later = reading(measured + timedelta(minutes=5))
    pinned.at(NOW + timedelta(minutes=5))
    headers = {**headers, "X-Sent-At": (pinned.now + timedelta(seconds=600)).isoformat()}
    assert _post(http_client, dosing_session, headers, later).status_code == 201
    db.refresh(alert)
    assert alert.occurrences == 2
    assert db.scalars(select(Alert).where(Alert.kind == "device_clock")).all() == [alert]


def test_a_device_within_the_tolerance_is_not_flagged(
    http_client, db, device, dosing_session, pinned
):
    headers = {**device(), **_sent(-45)}
    stored = _post(http_client, dosing_session, headers, reading(NOW - timedelta(seconds=45)))
    assert stored.status_code == 201, stored.text
    assert stored.json()["device_clock_offset_seconds"] == -45
    assert stored.json()["device_clock_flagged"] is False
    assert db.scalars(select(Alert).where(Alert.kind == "device_clock")).all() == []


def test_the_tolerance_is_the_clock_skew_setting(
    http_client, db, device, dosing_session, pinned, settings_env
):
    settings_env(clock_skew_seconds=30)
    headers = {**device(), **_sent(-45)}
    stored = _post(http_client, dosing_session, headers, reading(NOW - timedelta(seconds=45)))
    assert stored.json()["device_clock_flagged"] is True


def _late(db: Session, dosing_session: DosingSession) -> Any:
    stmt = select(Alert).where(
        Alert.dosing_session_id == dosing_session.id, Alert.rule_id == "hypertension-grade-3"
    )
    return db.scalars(stmt).one().finding


def test_lateness_is_judged_on_the_corrected_time(http_client, db, device, dosing_session, pinned):
    """A tablet 20 min slow sends a reading at once: on its clock it looks 20 min late."""
    slow = {**device("tablet-slow"), **_sent(-1200)}
    as_reported = NOW - timedelta(minutes=20)
    stored = _post(http_client, dosing_session, slow, reading(as_reported, SYSBP=172))
    assert stored.status_code == 201, stored.text
    finding = _late(db, dosing_session)
    assert finding["late"] is None
    assert datetime.fromisoformat(finding["at"]) == NOW  # when it was taken, on our clock
    row = db.get_one(VitalReading, uuid.UUID(stored.json()["id"]))
    assert row.measured_at == as_reported and row.corrected_measured_at == NOW


def test_without_a_known_offset_the_reported_time_is_judged(
    http_client, db, device, dosing_session, pinned
):
    unknown = device("tablet-unknown")  # sends no Date nor X-Sent-At
    as_reported = NOW - timedelta(minutes=20)
    stored = _post(http_client, dosing_session, unknown, reading(as_reported, SYSBP=172))
    assert stored.status_code == 201, stored.text
    assert stored.json()["device_clock_offset_seconds"] is None
    finding = _late(db, dosing_session)
    assert finding["late"]["minutes_late"] == 20.0
    assert datetime.fromisoformat(finding["at"]) == as_reported


@pytest.mark.parametrize(("offset", "overdue"), [(-1200, False), (None, True)])
def test_a_due_time_is_met_on_the_corrected_time(
    http_client, db, device, dosing_session, pinned, offset, overdue
):
    """Dosed at 08:30: SYSBP, DIABP and PULSE are due then, within 10 min. A tablet 20 min slow
    measures at 08:35 and says 08:15: on its clock the due time was missed."""
    dosed = T0 + timedelta(minutes=30)
    taken = dosed + timedelta(minutes=5)
    pinned.at(taken + timedelta(seconds=30))
    headers = device()
    if offset is not None:
        headers["X-Sent-At"] = (pinned.now + timedelta(seconds=offset)).isoformat()
    as_reported = taken - timedelta(minutes=20)
    assert _post(http_client, dosing_session, headers, reading(as_reported)).status_code == 201
    later = dosed + timedelta(minutes=20)
    evaluation.raise_alerts(db, dosing_session, later)
    stmt = select(Alert).where(
        Alert.dosing_session_id == dosing_session.id, Alert.kind == "overdue_measurement"
    )
    found = [a.finding["observed"]["due_minute"] for a in db.scalars(stmt)]
    assert (0 in found) is overdue, found


def test_a_window_of_readings_takes_in_devices_whose_clocks_are_off_by_half_an_hour(
    http_client, db, device, dosing_session, pinned
):
    """An evaluation after new readings loads those of the rules' lookback (app/rules/horizon.py)
    by their stored, device-clock time: a reading of a tablet 30 min slow, taken inside the
    window, is stored as if before it, and one of a tablet 30 min fast, taken before it, is
    stored as if inside. Chosen on the server's clock, the window holds exactly the session's
    readings whose corrected time it holds."""
    pinned.at(T0 + timedelta(hours=3))
    taken = [T0 + timedelta(minutes=m) for m in range(5, 180, 5)]
    for offset in (-1800, 0, 1800):
        headers = {**device(f"tablet{offset:+d}"), **_sent_at(pinned.now, offset)}
        batch = [reading(at + timedelta(seconds=offset + 1)) for at in taken]
        response = http_client.post(
            f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings/batch",
            json={"readings": batch},
            headers=headers,
        )
        assert response.json()["accepted"] == len(taken), response.text
    protocol = definition_of(db, dosing_session.protocol_version_id)
    window = reading_window(protocol, pinned.now - timedelta(minutes=10), doses=[])
    assert window is not None
    assert window.start == T0 + timedelta(hours=1, minutes=50)  # a 60 min lookback

    windowed = {r.id: r.measured_at for r in _readings(db, dosing_session, window=window)}
    whole = {
        r.id: r.measured_at for r in _readings(db, dosing_session) if window.holds(r.measured_at)
    }
    assert windowed == whole
    stored = {str(row.id): row for row in db.scalars(select(VitalReading))}
    # both edges were there to get wrong: slow readings in it, stored before its margin ...
    assert any(stored[i].measured_at < window.start - WINDOW_MARGIN for i in windowed)
    # ... and fast readings out of it, stored inside
    assert any(
        row.measured_at >= window.start and str(row.id) not in windowed for row in stored.values()
    )


def _sent_at(now: datetime, offset_seconds: float) -> dict[str, str]:
    return {"X-Sent-At": (now + timedelta(seconds=offset_seconds)).isoformat()}
