"""A reading's values are taken as the JSON types they are, and judged before any rounding."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.models import AuditRecord, VitalReading
from tests.vitals.readings import observation, reading

GARBAGE = [
    ({"measured_at": 1700000000}, "measured_at", "not the number 1700000000"),
    ({"measured_at": "1700000000"}, "measured_at", "give ISO 8601 text"),
    ({"supplemental_oxygen": "yes"}, "supplemental_oxygen", "Input should be a valid boolean"),
    ({"new_confusion": 1}, "new_confusion", "Input should be a valid boolean"),
    (
        {"observations": [observation("OXYSAT", 100.0001, "%")]},
        "observations.0.value",
        "OXYSAT 100.0001 % is outside the physiologically possible range 40-100 %",
    ),
    (
        {"observations": [observation("TEMP", 113.00001, "F")]},  # 45.000006 C
        "observations.0.value",
        "outside the physiologically possible range 25-45 C",
    ),
]


def _url(dosing_session, path=""):
    return f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings{path}"


def _stored(db):
    """Readings, and audit records of readings."""
    audited = select(func.count()).where(AuditRecord.entity_type == "vital_readings")
    return db.scalar(select(func.count()).select_from(VitalReading)), db.scalar(audited)


@pytest.mark.parametrize(("fields", "field", "why"), GARBAGE)
def test_a_reading_of_the_wrong_type_or_beyond_the_possible_is_refused(
    client, db, dosing_session, fields, field, why
):
    response = client.post(_url(dosing_session), json=reading(60, **fields))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert why in errors[0]["message"]
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(("fields", "field", "why"), GARBAGE)
def test_in_a_batch_such_a_reading_is_refused_and_the_others_kept(
    client, db, dosing_session, fields, field, why
):
    good, bad = reading(30), reading(60, **fields)
    response = client.post(_url(dosing_session, "/batch"), json={"readings": [good, bad]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert [e["field"] for e in results[1]["problem"]["errors"]] == [field]
    assert why in results[1]["problem"]["errors"][0]["message"]
    assert set(map(str, db.scalars(select(VitalReading.id)))) == {good["id"]}
    assert _stored(db) == (1, 1)


def test_the_possible_range_ends_exactly_at_its_limit(client, db, dosing_session):
    highest = reading(60, observation("OXYSAT", 100, "%"), observation("TEMP", 113, "F"))
    response = client.post(_url(dosing_session), json=highest)
    assert response.status_code == 201, response.text
    assert (response.json()["spo2_pct"], response.json()["temp_c"]) == (100, 45)
    beyond = reading(61, observation("OXYSAT", 100.0001, "%"))
    assert client.post(_url(dosing_session), json=beyond).status_code == 422
    assert _stored(db) == (1, 1)


def test_a_reading_may_be_up_to_the_clock_skew_ahead_of_the_server(
    client, db, dosing_session, monkeypatch
):
    now = clock.utcnow().replace(microsecond=0)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    beyond = (now + timedelta(seconds=300, milliseconds=1)).isoformat()
    ahead = client.post(_url(dosing_session), json=reading(measured_at=beyond))
    assert ahead.status_code == 422, ahead.text
    assert ahead.json()["errors"][0]["field"] == "measured_at"
    assert "allowed clock skew of 300 s" in ahead.json()["detail"]
    assert f"to {(now + timedelta(seconds=300)).isoformat()}" in ahead.json()["detail"]
    assert _stored(db) == (0, 0)
    at_skew = (now + timedelta(seconds=300)).isoformat()
    assert client.post(_url(dosing_session), json=reading(measured_at=at_skew)).status_code == 201
