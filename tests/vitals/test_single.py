from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.clock import utcnow
from app.models import VitalReading
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site, make_study
from tests.vitals.readings import observation, reading


def _url(dosing_session):
    return f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings"


def _count(db):
    return db.scalar(select(func.count()).select_from(VitalReading))


def test_a_reading_is_stored_in_canonical_units_with_what_was_reported(client, db, dosing_session):
    sent = reading(
        60,
        observation("SYSBP", 150, "mmHg"),
        observation("DIABP", 95, "mm[Hg]"),
        observation("PULSE", 104, "bpm"),
        observation("TEMP", 100.4, "F"),
        measured_at="2026-02-02T10:00:00+01:00",
    )
    response = client.post(_url(dosing_session), json=sent)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == sent["id"]
    assert body["measured_at"] in ("2026-02-02T09:00:00Z", "2026-02-02T09:00:00+00:00")
    assert body["source"] == "tablet-S01-3"
    assert (body["sysbp_mmhg"], body["diabp_mmhg"], body["pulse_bpm"]) == (150, 95, 104)
    assert body["temp_c"] == 38.0
    assert body["spo2_pct"] is None and body["resp_rate_per_min"] is None
    assert body["observations"] == [
        {"code": "SYSBP", "value": 150, "unit": "mmHg"},
        {"code": "DIABP", "value": 95, "unit": "mmHg"},
        {"code": "PULSE", "value": 104, "unit": "beats/min"},
        {"code": "TEMP", "value": 38.0, "unit": "C"},
    ]
    assert body["reported"]["measured_at"] == "2026-02-02T10:00:00+01:00"
    assert {"code": "TEMP", "value": 100.4, "unit": "F"} in body["reported"]["observations"]
    assert body["record_status"] == "valid"
    assert client.get(f"/api/v1/vital-readings/{sent['id']}").json() == body


def test_an_identical_replay_returns_the_stored_reading_once(client, db, dosing_session):
    sent = reading(60)
    first = client.post(_url(dosing_session), json=sent)
    assert first.status_code == 201
    # the same instant written with another offset is the same reading
    replay = client.post(
        _url(dosing_session), json={**sent, "measured_at": "2026-02-02T04:00:00-05:00"}
    )
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    assert _count(db) == 1


def test_the_same_id_with_other_content_is_a_conflict_naming_the_id(client, db, dosing_session):
    sent = reading(60)
    client.post(_url(dosing_session), json=sent)
    changed = {**sent, "observations": [observation("PULSE", 99, "beats/min")]}
    response = client.post(_url(dosing_session), json=changed)
    assert response.status_code == 409
    assert sent["id"] in response.json()["detail"]
    assert "observations" in response.json()["detail"]
    assert client.get(f"/api/v1/vital-readings/{sent['id']}").json()["pulse_bpm"] == 104
    assert _count(db) == 1


def test_plausible_but_dangerous_values_are_stored(client, dosing_session):
    sent = reading(
        90,
        observation("SYSBP", 210, "mmHg"),
        observation("DIABP", 125, "mmHg"),
        observation("TEMP", 40.5, "C"),
    )
    response = client.post(_url(dosing_session), json=sent)
    assert response.status_code == 201
    assert (response.json()["sysbp_mmhg"], response.json()["temp_c"]) == (210, 40.5)


@pytest.mark.parametrize(
    ("observations", "field", "message"),
    [
        (
            [observation("SYSBP", 150, "mmHg"), observation("PULSE", 900, "beats/min")],
            "observations.1.value",
            "PULSE 900 beats/min is outside the physiologically possible range 20-300",
        ),
        (
            [observation("SYSBP", 80, "mmHg"), observation("DIABP", 95, "mmHg")],
            "observations.0.value",
            "SYSBP 80 mmHg is not above DIABP 95 mmHg",
        ),
        (
            [observation("TEMP", 80, "C")],
            "observations.0.value",
            "TEMP 80 C is outside the physiologically possible range 25-45",
        ),
        (
            [observation("TEMP", 200, "F")],
            "observations.0.value",
            "TEMP 200 F (93.33 C) is outside the physiologically possible range 25-45",
        ),
        (
            [observation("PULSE", 80, "beats/min"), observation("TEMP", 37, "K")],
            "observations.1.unit",
            "unit 'K' is not a unit of TEMP",
        ),
        (
            [observation("GLUC", 5.5, "mmol/L")],
            "observations.0.code",
            "unknown measure 'GLUC'",
        ),
        (
            [observation("PULSE", 80, "beats/min"), observation("PULSE", 82, "beats/min")],
            "observations.1.code",
            "PULSE is given twice in one reading",
        ),
        ([], "observations", "at least 1 item"),
        (
            [observation("PULSE", "80", "beats/min")],
            "observations.0.value",
            "valid number",
        ),
    ],
)
def test_impossible_readings_are_refused_naming_the_field(
    client, db, dosing_session, observations, field, message
):
    response = client.post(_url(dosing_session), json={**reading(60), "observations": observations})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert _count(db) == 0


def test_a_reading_without_a_timezone_offset_is_refused(client, dosing_session):
    response = client.post(
        _url(dosing_session), json=reading(60, measured_at="2026-02-02T09:00:00")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "measured_at"
    assert "offset" in response.json()["errors"][0]["message"]


def test_readings_from_the_future_or_before_the_session_are_refused(client, dosing_session):
    ahead = (utcnow() + timedelta(minutes=10)).isoformat()
    future = client.post(_url(dosing_session), json=reading(measured_at=ahead))
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "measured_at"
    assert "clock skew of 300 s" in future.json()["detail"]

    slightly_ahead = (utcnow() + timedelta(seconds=60)).isoformat()
    assert (
        client.post(_url(dosing_session), json=reading(measured_at=slightly_ahead)).status_code
        == 201
    )

    # the protocol's baseline window is 60 min before the dose; the session started at T0
    assert client.post(_url(dosing_session), json=reading(-60)).status_code == 201
    too_early = client.post(_url(dosing_session), json=reading(-61))
    assert too_early.status_code == 422
    assert "cannot belong to this session" in too_early.json()["detail"]


def test_a_planned_session_takes_no_readings(client, db):
    participant = make_participant(db, make_site(db, make_study(db)), stage="randomised")
    planned = make_dosing_session(db, participant, started_at=None)
    response = client.post(_url(planned), json=reading(0))
    assert response.status_code == 409
    assert "has not started" in response.json()["detail"]


def test_readings_are_accepted_up_to_an_hour_after_the_end_by_default(client, dosing_session):
    ended_at = (T0 + timedelta(hours=8)).isoformat()
    ended = client.post(
        f"/api/v1/dosing-sessions/{dosing_session.id}/end",
        json={"ended_at": ended_at, "end_reason": "baseline not recorded in this test"},
    )
    assert ended.status_code == 200, ended.text
    assert client.post(_url(dosing_session), json=reading(8 * 60 + 60)).status_code == 201
    too_late = client.post(_url(dosing_session), json=reading(8 * 60 + 61))
    assert too_late.status_code == 422
    assert (
        "after the session's end plus the 60 min the protocol accepts" in too_late.json()["detail"]
    )


def test_the_protocol_sets_how_long_after_the_end_readings_are_accepted(client, db, tmp_path):
    text = MDMA.read_text()
    anchor = "    within_minutes_before_dose: 60\n"
    assert anchor in text and 'version: "1.4"' in text
    edited = tmp_path / "mdma-15.yaml"
    edited.write_text(
        text.replace(anchor, anchor + "  readings_accepted_after_end_minutes: 15\n", 1).replace(
            'version: "1.4"', 'version: "1.4-after-end-15"', 1
        )
    )
    site = make_site(db, make_study(db, edited, code="MAPP-15"))
    session = make_dosing_session(db, make_participant(db, site, stage="randomised"))
    ended = client.post(
        f"/api/v1/dosing-sessions/{session.id}/end",
        json={
            "ended_at": (T0 + timedelta(hours=8)).isoformat(),
            "end_reason": "baseline not recorded in this test",
        },
    )
    assert ended.status_code == 200, ended.text
    assert client.post(_url(session), json=reading(8 * 60 + 15)).status_code == 201
    too_late = client.post(_url(session), json=reading(8 * 60 + 16))
    assert too_late.status_code == 422
    assert "plus the 15 min the protocol accepts" in too_late.json()["detail"]


def test_unknown_dosing_session_is_404(client):
    response = client.post(
        "/api/v1/dosing-sessions/0190a0a0-0000-7000-8000-000000000000/vital-readings",
        json=reading(0),
    )
    assert response.status_code == 404
