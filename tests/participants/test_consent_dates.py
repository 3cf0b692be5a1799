"""A participant's consent date, and the dates that follow it, are refused when implausible."""

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.models import AuditRecord, Participant
from tests.factories.trial import make_participant, make_site, make_study

# The clock stands at noon UTC of today, so "today" is the same calendar day everywhere below.
NOW = datetime.combine(datetime.now(UTC).date(), time(12), UTC)
TODAY = NOW.date()
MAX_AGE_DAYS = 3653  # VIGIL_CONSENT_MAX_AGE_DAYS' default: 10 years


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)


@pytest.fixture
def site(db):
    return make_site(db, make_study(db))


def _stored(db):
    """Participants, and audit records of participants."""
    audited = select(func.count()).where(AuditRecord.entity_type == "participants")
    return db.scalar(select(func.count()).select_from(Participant)), db.scalar(audited)


def _post(client, site, consented_on):
    return client.post(
        f"/api/v1/studies/{site.study_id}/participants",
        json={
            "site_id": str(site.id),
            "subject_id": "01-010",
            "sex": "F",
            "age_years": 33,
            "consented_on": consented_on,
        },
    )


def _refused(response, field):
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    return errors[0]["message"]


@pytest.mark.parametrize(
    ("consented_on", "why"),
    [
        ("9999-01-01", "is after today at the site (UTC)"),
        ((TODAY + timedelta(days=1)).isoformat(), "is after today at the site (UTC)"),
        ("0001-01-01", f"is before the oldest consent date allowed, {MAX_AGE_DAYS} days before"),
        ((TODAY - timedelta(days=MAX_AGE_DAYS + 1)).isoformat(), "VIGIL_CONSENT_MAX_AGE_DAYS"),
        (20260102, "give ISO 8601 text, e.g. 2026-01-31, not the number 20260102"),
        ("2026-01-02T00:00:00Z", "give ISO 8601 text, e.g. 2026-01-31"),
    ],
)
def test_an_implausible_consent_date_is_refused_and_nothing_is_stored(
    client, db, site, consented_on, why
):
    message = _refused(_post(client, site, consented_on), "consented_on")
    assert why in message
    if isinstance(consented_on, str) and "T" not in consented_on:  # the range it may lie in
        oldest = TODAY - timedelta(days=MAX_AGE_DAYS)
        assert f"allowed: from {oldest.isoformat()} to {TODAY.isoformat()}" in message
    assert _stored(db) == (0, 0)


@pytest.mark.parametrize(
    ("accepted", "refused"),
    [
        (TODAY, TODAY + timedelta(days=1)),
        (TODAY - timedelta(days=MAX_AGE_DAYS), TODAY - timedelta(days=MAX_AGE_DAYS + 1)),
    ],
    ids=["today", "the longest span ago"],
)
def test_consent_is_accepted_up_to_each_end_of_its_range_and_refused_a_day_beyond(
    client, site, accepted, refused
):
    _refused(_post(client, site, refused.isoformat()), "consented_on")
    response = _post(client, site, accepted.isoformat())
    assert response.status_code == 201, response.text
    assert response.json()["consented_on"] == accepted.isoformat()


def test_today_is_the_site_calendar_day(client, db, site):
    # at noon UTC it is already tomorrow in Kiritimati (UTC+14), but not the day after
    site.timezone = "Pacific/Kiritimati"
    db.flush()
    _refused(_post(client, site, (TODAY + timedelta(days=2)).isoformat()), "consented_on")
    assert _post(client, site, (TODAY + timedelta(days=1)).isoformat()).status_code == 201


def test_enrolment_and_visits_are_dated_between_consent_and_today(client, db, site):
    participant = make_participant(db, site)  # consented 2026-01-02
    enrol = f"/api/v1/participants/{participant.id}/enrol"
    before_consent = client.post(enrol, json={"enrolled_on": "2026-01-01"})
    assert "is before the participant's consent date" in _refused(before_consent, "enrolled_on")
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert "is after today" in _refused(
        client.post(enrol, json={"enrolled_on": tomorrow}), "enrolled_on"
    )
    assert client.post(enrol, json={"enrolled_on": "2026-01-05"}).status_code == 200

    visit = client.get(f"/api/v1/participants/{participant.id}/visits").json()["items"][1]
    outcome = f"/api/v1/visits/{visit['id']}/outcome"
    future = client.post(outcome, json={"status": "completed", "occurred_on": tomorrow})
    assert "is after today" in _refused(future, "occurred_on")
    reschedule = f"/api/v1/visits/{visit['id']}/reschedule"
    early = client.post(
        reschedule, json={"scheduled_on": "2025-12-31", "reason": "Participant asked to"}
    )
    assert "is before the participant's consent date" in _refused(early, "scheduled_on")
    stored = client.get(f"/api/v1/visits/{visit['id']}").json()
    assert (stored["status"], stored["scheduled_on"]) == ("scheduled", visit["scheduled_on"])
