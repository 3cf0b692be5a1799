"""GET /alerts/{id} shows what a client needs without the audit trail: the measures of the rule
(SDTM codes) and every occurrence with its time, severity, observed values, thresholds and
evidence, oldest first; long lists read on from /alerts/{id}/occurrences with the usual cursor.
Refusals: an unknown alert, another site's alert, a cursor Vigil did not issue for the list."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.alerts import occurrences
from app.alerts.sweep import sweep
from app.models import AlertOccurrence, DosingSession, Participant
from app.permissions import Role
from tests.alerts.test_disproval import DOSED, post_batch, reading
from tests.factories.alerts import PinnedClock
from tests.factories.dosing import make_dosing_session

API = "/api/v1"


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    return PinnedClock(monkeypatch, DOSED + timedelta(minutes=50))


@pytest.fixture
def dosed(db: Session, participant: Participant) -> DosingSession:
    return make_dosing_session(db, participant, initial_dose_mg=80)


def hypertensive(minutes_after_dose: int, systolic: float) -> dict[str, Any]:
    body = reading(minutes_after_dose)
    for observation in body["observations"]:
        if observation["code"] == "SYSBP":
            observation["value"] = systolic
    return body


def alert_id(client, dosing_session: DosingSession, rule_id: str) -> str:
    listed = client.get(f"{API}/alerts", params={"dosing_session_id": str(dosing_session.id)})
    (alert,) = [a for a in listed.json()["items"] if a["rule_id"] == rule_id]
    return str(alert["id"])


def test_an_alert_shows_its_measures_and_each_occurrence_with_values_and_thresholds(
    client, pinned, dosed
):
    first, second = hypertensive(40, 172), hypertensive(45, 176)
    post_batch(client, dosed, first, second)
    shown = client.get(f"{API}/alerts/{alert_id(client, dosed, 'hypertension-grade-3')}")
    assert shown.status_code == 200, shown.text
    alert = shown.json()
    assert alert["measures"] == ["SYSBP", "DIABP"]
    assert alert["occurrences"] == 2
    page = alert["occurrence_page"]
    assert page["next_cursor"] is None
    assert [item["evidence"] for item in page["items"]] == [[first["id"]], [second["id"]]]
    assert [item["observed"]["SYSBP"] for item in page["items"]] == [172, 176]
    for item, minutes in zip(page["items"], (40, 45), strict=True):
        assert datetime.fromisoformat(item["found_at"]) == DOSED + timedelta(minutes=minutes)
        assert item["severity"] == "critical" and item["variant"] is None
        assert any("160" in threshold for threshold in item["thresholds"])
        assert "mmHg" in item["message"]
        assert (item["withdrawn"], item["withdrawn_at"], item["withdrawn_reason"]) == (
            False,
            None,
            None,
        )


def test_an_overdue_alert_names_the_measures_it_watches(db, client, pinned, dosed):
    sweep(db, DOSED + timedelta(minutes=50))
    alert = client.get(f"{API}/alerts/{alert_id(client, dosed, 'overdue-bp-pulse')}").json()
    assert alert["measures"] == ["SYSBP", "DIABP", "PULSE"]
    at_dose, half_hour = alert["occurrence_page"]["items"]  # due at T+0 and T+30
    assert at_dose["observed"] == {
        "due_minute": 0,
        "grace_minutes": 10,
        "missing": "SYSBP, DIABP, PULSE",
    }
    assert half_hour["observed"]["due_minute"] == 30


def test_a_long_list_of_occurrences_is_read_page_by_page_oldest_first(
    db, client, pinned, dosed, monkeypatch
):
    """Nothing measured for 8 h: 13 blood-pressure due times missed (every 30 min to T+240,
    then hourly to T+480)."""
    sweep(db, DOSED + timedelta(minutes=500))
    overdue = alert_id(client, dosed, "overdue-bp-pulse")
    everything = client.get(f"{API}/alerts/{overdue}").json()
    assert everything["occurrences"] == 13
    assert len(everything["occurrence_page"]["items"]) == 13

    read, cursor, pages = [], None, 0
    while True:
        params = {"limit": "5"} | ({"cursor": cursor} if cursor else {})
        response = client.get(f"{API}/alerts/{overdue}/occurrences", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        read += body["items"]
        pages, cursor = pages + 1, body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert read == everything["occurrence_page"]["items"]
    minutes = [item["observed"]["due_minute"] for item in read]
    assert minutes == [*range(0, 241, 30), *range(300, 481, 60)]

    # the alert itself shows the first page only, and says where the rest is
    monkeypatch.setattr(occurrences, "FIRST_PAGE", 5)
    first = client.get(f"{API}/alerts/{overdue}").json()["occurrence_page"]
    assert first["items"] == read[:5]
    rest = client.get(
        f"{API}/alerts/{overdue}/occurrences", params={"cursor": first["next_cursor"]}
    ).json()
    assert rest["items"] == read[5:] and rest["next_cursor"] is None


def test_an_occurrence_stored_before_its_finding_was_kept_shows_its_time(db, client, pinned, dosed):
    post_batch(client, dosed, hypertensive(40, 172))
    alert = alert_id(client, dosed, "hypertension-grade-3")
    db.execute(
        update(AlertOccurrence)
        .where(AlertOccurrence.alert_id == uuid.UUID(alert))
        .values(finding=None)
    )
    (item,) = client.get(f"{API}/alerts/{alert}/occurrences").json()["items"]
    assert datetime.fromisoformat(item["found_at"]) == DOSED + timedelta(minutes=40)
    assert (item["severity"], item["observed"], item["evidence"]) == (None, None, None)


def test_an_occurrence_says_how_late_its_reading_arrived(db, client, pinned, dosed):
    post_batch(client, dosed, hypertensive(40, 172))
    alert = alert_id(client, dosed, "hypertension-grade-3")
    (item,) = client.get(f"{API}/alerts/{alert}/occurrences").json()["items"]
    (row,) = db.scalars(select(AlertOccurrence).where(AlertOccurrence.alert_id == uuid.UUID(alert)))
    assert row.finding is not None
    late = {
        "reading_id": item["evidence"][0],
        "measured_at": "2026-02-02T09:10:00+00:00",
        "received_at": "2026-02-02T10:00:00+00:00",
        "minutes_late": 50.0,
    }
    row.finding = {**row.finding, "late": late}
    db.flush()
    (item,) = client.get(f"{API}/alerts/{alert}/occurrences").json()["items"]
    assert item["late"]["minutes_late"] == 50.0
    assert item["late"]["received_at"].startswith("2026-02-02T10:00:00")


def test_an_unknown_alert_is_not_found(client):
    unknown = uuid.uuid4()
    for path in (f"alerts/{unknown}", f"alerts/{unknown}/occurrences"):
        response = client.get(f"{API}/{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert f"alert {unknown} does not exist" in response.json()["detail"]


def test_a_cursor_not_issued_for_the_list_is_refused_with_what_to_do(client, pinned, dosed):
    feverish = reading(45)
    feverish["observations"][-1] = {"code": "TEMP", "value": 38.4, "unit": "C"}
    post_batch(client, dosed, hypertensive(40, 172), feverish)  # two alerts: a cursor of them
    alert = alert_id(client, dosed, "hypertension-grade-3")
    alerts_cursor = client.get(f"{API}/alerts", params={"limit": "1"}).json()["next_cursor"]
    assert alerts_cursor is not None
    for cursor in ("not-a-cursor", alerts_cursor):
        response = client.get(f"{API}/alerts/{alert}/occurrences", params={"cursor": cursor})
        assert response.status_code == 422, cursor
        assert response.headers["content-type"] == "application/problem+json"
        assert "pass next_cursor from the previous page unchanged" in response.json()["detail"]
    too_many = client.get(f"{API}/alerts/{alert}/occurrences", params={"limit": "501"})
    assert too_many.status_code == 422


def test_another_sites_alert_and_its_occurrences_are_not_found(client_as, two_sites):
    alert = two_sites.a.alert
    site_b = client_as(Role.CLINICIAN, sites=[two_sites.b.site])
    for path in (f"alerts/{alert.id}", f"alerts/{alert.id}/occurrences"):
        response = site_b.get(f"{API}/{path}")
        assert response.status_code == 404, path
        assert "S01" not in response.text
    therapist = client_as(Role.THERAPIST, sites=[two_sites.a.site])
    assert therapist.get(f"{API}/alerts/{alert.id}/occurrences").status_code == 200
    monitor = client_as(Role.MEDICAL_MONITOR)
    assert monitor.get(f"{API}/alerts/{alert.id}").json()["measures"] == ["SYSBP", "DIABP"]
