"""Findings become alerts in the transaction of the readings (or dose) that caused them, and the
supplemental dose gate, all through HTTP with the clock pinned."""

import uuid
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.alerts import evaluation
from app.models import AlertOccurrence, DosingSession, Site
from app.permissions import Role
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant

API = "/api/v1"
PROBLEMS = "https://vigil.invalid/problems/"
DOSED_AT = T0 + timedelta(minutes=30)  # the factory's initial dose, 80 mg
NORMAL = {"SYSBP": 122, "DIABP": 78, "PULSE": 76, "TEMP": 36.8}
UNITS = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        monkeypatch.setattr(clock, "utcnow", lambda: self.now)

    def at(self, when: datetime) -> None:
        self.now = when


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def undosed(db: Session, site: Site) -> DosingSession:
    """In progress since T0, no dose yet: nothing can be overdue, no trend has a baseline."""
    return make_dosing_session(db, make_participant(db, site, stage="randomised"))


@pytest.fixture
def dosed(db: Session, site: Site) -> DosingSession:
    participant = make_participant(db, site, "01-002", stage="randomised")
    return make_dosing_session(db, participant, initial_dose_mg=80)


def reading(when: datetime, **values: float) -> dict[str, Any]:
    values = {**NORMAL, **values}
    return {
        "id": str(uuid.uuid4()),
        "measured_at": when.isoformat(),
        "observations": [
            {"code": code, "value": value, "unit": UNITS[code]} for code, value in values.items()
        ],
    }


def post_batch(client, dosing_session: DosingSession, *readings: dict[str, Any]):
    response = client.post(
        f"{API}/dosing-sessions/{dosing_session.id}/vital-readings/batch",
        json={"readings": list(readings)},
    )
    assert response.status_code == 200, response.text
    return response.json()


def alerts_of(client, dosing_session: DosingSession) -> dict[str, dict[str, Any]]:
    response = client.get(f"{API}/alerts", params={"dosing_session_id": str(dosing_session.id)})
    assert response.status_code == 200, response.text
    return {alert["rule_id"]: alert for alert in response.json()["items"]}


def test_a_hypertensive_batch_opens_one_critical_alert_and_a_replay_adds_nothing(
    client, pinned, undosed
):
    pinned.at(T0 + timedelta(minutes=25))  # received on time: the clock runs from the finding
    batch = [reading(T0 + timedelta(minutes=20), SYSBP=172), reading(T0 + timedelta(minutes=25))]
    assert post_batch(client, undosed, *batch)["accepted"] == 2

    alerts = alerts_of(client, undosed)
    assert list(alerts) == ["hypertension-grade-3"]
    alert = alerts["hypertension-grade-3"]
    # CTCAE grade 3 hypertension: a critical alert, acknowledged within the protocol's 10 minutes
    assert (alert["severity"], alert["status"], alert["occurrences"]) == ("critical", "open", 1)
    assert datetime.fromisoformat(alert["acknowledge_by"]) == T0 + timedelta(minutes=30)
    assert "172 mmHg" in alert["message"]

    replay = post_batch(client, undosed, *batch)
    assert replay["duplicates"] == 2
    assert alerts_of(client, undosed)["hypertension-grade-3"]["occurrences"] == 1
    # a quiet later reading evaluates the session again: still no new occurrence
    pinned.at(T0 + timedelta(minutes=40))
    post_batch(client, undosed, reading(T0 + timedelta(minutes=40)))
    assert alerts_of(client, undosed)["hypertension-grade-3"]["occurrences"] == 1


def test_a_crisis_reading_raises_its_own_critical_alert(client, pinned, undosed):
    pinned.at(T0 + timedelta(minutes=20))
    post_batch(client, undosed, reading(T0 + timedelta(minutes=20), SYSBP=172))
    pinned.at(T0 + timedelta(minutes=35))
    post_batch(client, undosed, reading(T0 + timedelta(minutes=35), SYSBP=185))

    alerts = alerts_of(client, undosed)
    assert set(alerts) == {"hypertension-grade-3", "hypertensive-crisis"}
    grade_3, crisis = alerts["hypertension-grade-3"], alerts["hypertensive-crisis"]
    # one grade 3 alert for the session, updated by the later reading
    assert (grade_3["severity"], grade_3["occurrences"]) == ("critical", 2)
    assert "172 mmHg" in grade_3["message"]  # the first at its severity; the later one counted
    assert (crisis["severity"], crisis["occurrences"]) == ("critical", 1)
    # the MDMA protocol: a critical alert is acknowledged within 10 minutes of the finding
    assert datetime.fromisoformat(crisis["acknowledge_by"]) == T0 + timedelta(minutes=45)


def test_a_quiet_batch_opens_nothing(client, pinned, undosed):
    pinned.at(T0 + timedelta(minutes=60))
    quiet = [reading(T0 + timedelta(minutes=m)) for m in (10, 20, 30, 40)]
    assert post_batch(client, undosed, *quiet)["accepted"] == 4
    assert alerts_of(client, undosed) == {}


def test_an_alert_commits_with_its_reading_or_not_at_all(client, pinned, undosed):
    pinned.at(T0 + timedelta(minutes=60))
    failing = TestClient(client.app, raise_server_exceptions=False, headers=client.headers)
    with patch.object(
        evaluation.alerts, "upsert_from_finding", side_effect=RuntimeError("alert store down")
    ):
        response = failing.post(
            f"{API}/dosing-sessions/{undosed.id}/vital-readings/batch",
            json={"readings": [reading(T0 + timedelta(minutes=20), SYSBP=172)]},
        )
    assert response.status_code == 500
    listed = client.get(f"{API}/dosing-sessions/{undosed.id}/vital-readings")
    assert listed.json()["items"] == []
    assert alerts_of(client, undosed) == {}


def test_an_entered_in_error_reading_does_not_count_at_the_next_evaluation(client, pinned, undosed):
    pinned.at(T0 + timedelta(minutes=60))
    first = reading(T0 + timedelta(minutes=10), PULSE=115)
    second = reading(T0 + timedelta(minutes=15), PULSE=115)
    post_batch(client, undosed, first, second)
    assert "sustained-tachycardia" not in alerts_of(client, undosed)  # two in a row, not three

    marked = client.post(
        f"{API}/vital-readings/{second['id']}/entered-in-error",
        json={"reason": "pulse of the wrong participant"},
    )
    assert marked.status_code == 200, marked.text
    post_batch(client, undosed, reading(T0 + timedelta(minutes=20), PULSE=115))
    assert "sustained-tachycardia" not in alerts_of(client, undosed)  # still two valid ones

    post_batch(client, undosed, reading(T0 + timedelta(minutes=25), PULSE=115))
    sustained = alerts_of(client, undosed)["sustained-tachycardia"]
    assert sustained["severity"] == "warning"
    assert second["id"] not in sustained["finding"]["evidence"]


def enter_in_error(client, body: dict[str, Any], reason: str) -> None:
    marked = client.post(
        f"{API}/vital-readings/{body['id']}/entered-in-error", json={"reason": reason}
    )
    assert marked.status_code == 200, marked.text


def test_a_reading_entered_in_error_that_broke_a_run_opens_the_runs_alert_at_once(
    client, pinned, undosed
):
    pinned.at(T0 + timedelta(minutes=60))
    calm = reading(T0 + timedelta(minutes=15), PULSE=80)
    post_batch(
        client,
        undosed,
        reading(T0 + timedelta(minutes=10), PULSE=115),
        calm,
        reading(T0 + timedelta(minutes=20), PULSE=115),
        reading(T0 + timedelta(minutes=25), PULSE=115),
    )
    assert "sustained-tachycardia" not in alerts_of(client, undosed)  # the calm one broke the run

    enter_in_error(client, calm, "taken from the wrong participant")
    sustained = alerts_of(client, undosed)["sustained-tachycardia"]  # no new reading needed
    assert sustained["severity"] == "warning"
    assert calm["id"] not in sustained["finding"]["evidence"]


def test_a_reading_entered_in_error_that_met_a_due_time_makes_it_overdue_at_once(
    client, pinned, dosed
):
    """Dosed at T0+30: blood pressure, pulse and temperature are due at the dose and 30 min
    later (grace 10 min; 15 for temperature, due hourly). Both were met; then one was not."""
    pinned.at(DOSED_AT + timedelta(minutes=50))
    at_dose = reading(DOSED_AT)
    half_hour = reading(DOSED_AT + timedelta(minutes=30))
    post_batch(client, dosed, at_dose, half_hour)
    assert "overdue-bp-pulse" not in alerts_of(client, dosed)

    enter_in_error(client, half_hour, "cuff not on the arm")
    overdue = alerts_of(client, dosed)["overdue-bp-pulse"]
    assert overdue["finding"]["observed"]["due_minute"] == 30


def gate(client, dosing_session: DosingSession) -> dict[str, Any]:
    response = client.get(f"{API}/dosing-sessions/{dosing_session.id}/supplemental-dose-gate")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_gate_is_closed_before_the_window_and_open_inside_it_with_fresh_quiet_vitals(
    client, pinned, dosed
):
    pinned.at(DOSED_AT + timedelta(minutes=60))
    post_batch(client, dosed, reading(DOSED_AT + timedelta(minutes=55)))
    early = gate(client, dosed)
    assert early["open"] is False
    assert [r["type"] for r in early["reasons"]] == [f"{PROBLEMS}dose-outside-window"]
    assert datetime.fromisoformat(early["opens_at"]) == DOSED_AT + timedelta(minutes=90)
    assert datetime.fromisoformat(early["closes_at"]) == DOSED_AT + timedelta(minutes=150)
    assert early["supplemental_mg"] == 40
    assert datetime.fromisoformat(early["evaluated_at"]) == DOSED_AT + timedelta(minutes=60)

    pinned.at(DOSED_AT + timedelta(minutes=100))
    stale = gate(client, dosed)
    assert stale["open"] is False
    assert all(r["message"].endswith("min old") for r in stale["reasons"]), stale["reasons"]
    assert {r["type"] for r in stale["reasons"]} == {f"{PROBLEMS}dose-gate-stale-vitals"}

    post_batch(client, dosed, reading(DOSED_AT + timedelta(minutes=95)))
    inside = gate(client, dosed)
    assert inside == {**inside, "open": True, "reasons": []}


def test_a_supplemental_dose_through_a_closed_gate_needs_a_clinicians_override(
    db, client_as, pinned, site, dosed
):
    pinned.at(DOSED_AT + timedelta(minutes=100))
    clinician = client_as(Role.CLINICIAN, sites=[site])
    therapist = client_as(Role.THERAPIST, sites=[site])
    # the latest vitals are high: the gate is closed
    post_batch(clinician, dosed, reading(DOSED_AT + timedelta(minutes=95), SYSBP=165))
    dose = {
        "kind": "supplemental",
        "amount_mg": 40,
        "administered_at": (DOSED_AT + timedelta(minutes=100)).isoformat(),
    }
    url = f"{API}/dosing-sessions/{dosed.id}/doses"

    refused = clinician.post(url, json=dose)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert "dose gate is closed" in body["detail"]
    assert "Systolic BP 165 mmHg" in body["detail"] or "165" in body["detail"]
    assert body["errors"] and all(error["field"] == "gate" for error in body["errors"])

    reason = "BP 165 settled to 150 on manual recheck; physician judges it safe"
    by_therapist = therapist.post(url, json={**dose, "gate_override_reason": reason})
    assert by_therapist.status_code == 403, by_therapist.text
    assert "clinician" in by_therapist.json()["detail"]

    overridden = clinician.post(url, json={**dose, "gate_override_reason": reason})
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["deviation_reason"] == f"gate override: {reason}"
    shown = clinician.get(f"{API}/dosing-sessions/{dosed.id}").json()
    assert [d["deviation_reason"] for d in shown["doses"]] == [None, f"gate override: {reason}"]
    # the engine notes the dose given while the gate was closed, in the same transaction
    given_while_closed = alerts_of(clinician, dosed)["supplemental-dose-gate"]
    assert given_while_closed["severity"] == "warning"


def test_an_override_reason_with_an_open_gate_is_refused(client_as, pinned, site, dosed):
    pinned.at(DOSED_AT + timedelta(minutes=100))
    clinician = client_as(Role.CLINICIAN, sites=[site])
    post_batch(clinician, dosed, reading(DOSED_AT + timedelta(minutes=95)))
    response = clinician.post(
        f"{API}/dosing-sessions/{dosed.id}/doses",
        json={
            "kind": "supplemental",
            "amount_mg": 40,
            "administered_at": (DOSED_AT + timedelta(minutes=100)).isoformat(),
            "gate_override_reason": "just in case",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "gate_override_reason"


def test_an_alert_remembers_its_occurrences_in_rows_not_in_its_finding(client, db, pinned, undosed):
    """The memory of what an alert has taken in does not grow the alert (nor, with it, every
    audit record of its changes): one row per occurrence."""
    pinned.at(T0 + timedelta(minutes=60))
    for minutes in (20, 25, 30):
        post_batch(client, undosed, reading(T0 + timedelta(minutes=minutes), SYSBP=172))
    alert = alerts_of(client, undosed)["hypertension-grade-3"]
    assert alert["occurrences"] == 3
    assert "occurrence_keys" not in alert["finding"]
    rows = db.scalars(
        select(AlertOccurrence.found_at).where(AlertOccurrence.alert_id == uuid.UUID(alert["id"]))
    ).all()
    assert sorted(rows) == [T0 + timedelta(minutes=m) for m in (20, 25, 30)]
    post_batch(client, undosed, reading(T0 + timedelta(minutes=35), SYSBP=175))
    assert alerts_of(client, undosed)["hypertension-grade-3"]["occurrences"] == 4
