"""Visit windows: the sweep marks a visit whose window closed (by the site's date) without an
outcome missed and opens a visit_missed alert, which the site's coordinators list, read,
acknowledge and resolve; clinical alerts stay out of a coordinator's sight."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.alerts.sweep import sweep
from app.models import AuditRecord, Visit
from app.studies import service as studies
from app.studies.schemas import SiteCreate
from app.time_bounds import start_of_day
from tests.factories.alerts import make_alert
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study

API = "/api/v1"
ZONE = "America/Los_Angeles"


@pytest.fixture
def west(db):
    """A site eight hours behind UTC, so its date lags the UTC date in the evening."""
    return studies.create_site(
        db, make_study(db), SiteCreate(code="S05", name="Site S05", timezone=ZONE)
    )


def _visit(db, participant, code) -> Visit:
    return db.scalars(
        select(Visit).where(Visit.participant_id == participant.id, Visit.code == code)
    ).one()


def _visit_alerts(client, participant):
    response = client.get(f"{API}/alerts", params={"participant_id": str(participant.id)})
    assert response.status_code == 200, response.text
    return [a for a in response.json()["items"] if a["kind"] == "visit_missed"]


def test_a_window_closes_at_the_end_of_its_last_day_at_the_site(client, db, west):
    participant = make_participant(db, west, stage="randomised")
    prep1 = _visit(db, participant, "PREP1")
    last_day = prep1.window_end_on
    utc_next_day = start_of_day(last_day + timedelta(days=1), "UTC") + timedelta(hours=2)
    sweep(db, utc_next_day)  # the next day in UTC, still the last day at the site
    assert _visit(db, participant, "PREP1").status == "scheduled"
    assert all(a["finding"]["visit_code"] != "PREP1" for a in _visit_alerts(client, participant))

    site_next_day = start_of_day(last_day + timedelta(days=1), ZONE) + timedelta(minutes=1)
    sweep(db, site_next_day)
    visit = client.get(f"{API}/participants/{participant.id}/visits").json()["items"]
    prep1_read = next(v for v in visit if v["code"] == "PREP1")
    assert prep1_read["status"] == "missed"
    assert prep1_read["status_reason"] == (
        f"window closed on {last_day.isoformat()} without an outcome"
    )
    reasons = db.scalars(
        select(AuditRecord.reason).where(
            AuditRecord.entity_type == "visits", AuditRecord.entity_id == str(prep1.id)
        )
    ).all()
    assert f"window closed on {last_day.isoformat()} without an outcome" in reasons

    (alert,) = [
        a for a in _visit_alerts(client, participant) if a["finding"]["visit_code"] == "PREP1"
    ]
    assert alert["dosing_session_id"] is None and alert["status"] == "open"
    assert alert["severity"] == "warning" and alert["title"] == "Visit PREP1 missed"
    assert "was not held in its window" in alert["message"] and ZONE in alert["message"]

    again = sweep(db, site_next_day + timedelta(minutes=5))
    assert all(a.kind != "visit_missed" or a.finding["visit_code"] != "PREP1" for a in again)
    assert len(_visit_alerts(client, participant)) == len(
        {a["finding"]["visit_code"] for a in _visit_alerts(client, participant)}
    )


def test_a_visit_with_an_outcome_or_a_started_session_is_not_missed(client, db):
    site = make_site(db, make_study(db))
    participant = make_participant(db, site, stage="randomised")
    prep1 = _visit(db, participant, "PREP1")
    held = client.post(
        f"{API}/visits/{prep1.id}/outcome",
        json={"status": "completed", "occurred_on": prep1.target_on.isoformat()},
    )
    assert held.status_code == 200, held.text
    make_dosing_session(db, participant, started_at=T0)  # EXP1, in progress
    exp1 = _visit(db, participant, "EXP1")
    sweep(db, start_of_day(exp1.window_end_on + timedelta(days=2), "UTC"))
    assert _visit(db, participant, "PREP1").status == "completed"
    assert _visit(db, participant, "EXP1").status == "scheduled"
    missed = {a["finding"]["visit_code"] for a in _visit_alerts(client, participant)}
    assert "PREP1" not in missed and "EXP1" not in missed


def test_coordinators_see_and_answer_visit_alerts_only(client_as, db):
    site = make_site(db, make_study(db))
    other_site = make_site(db, studies.get_study(db, site.study_id), "S02")
    participant = make_participant(db, site, stage="randomised")
    dosing_session = make_dosing_session(db, participant)
    clinical, _ = make_alert(db, dosing_session, found_at=T0 + timedelta(minutes=60))
    prep1 = _visit(db, participant, "PREP1")
    (visit_alert,) = [
        a
        for a in sweep(db, start_of_day(prep1.window_end_on + timedelta(days=1), "UTC"))
        if a.kind == "visit_missed" and a.finding["visit_code"] == "PREP1"
    ]

    coordinator = client_as("coordinator", [site])
    listed = coordinator.get(f"{API}/alerts").json()["items"]
    assert listed and {a["kind"] for a in listed} == {"visit_missed"}
    assert str(visit_alert.id) in {a["id"] for a in listed}
    hidden = coordinator.get(f"{API}/alerts/{clinical.id}")
    assert hidden.status_code == 404
    assert (
        coordinator.post(
            f"{API}/alerts/{clinical.id}/acknowledge", json={"note": "seen"}
        ).status_code
        == 404
    )
    assert coordinator.get(f"{API}/alerts/stream").status_code == 403

    acked = coordinator.post(
        f"{API}/alerts/{visit_alert.id}/acknowledge", json={"note": "Calling the participant"}
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    resolved = coordinator.post(
        f"{API}/alerts/{visit_alert.id}/resolve",
        json={"resolution": "Participant was travelling; PREP2 rescheduled with them"},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"

    history = coordinator.get(f"{API}/history/alerts/{clinical.id}")
    assert history.status_code == 404
    assert coordinator.get(f"{API}/history/alerts/{visit_alert.id}").status_code == 200

    elsewhere = client_as("coordinator", [other_site])
    assert elsewhere.get(f"{API}/alerts/{visit_alert.id}").status_code == 404

    clinician = client_as("clinician", [site])
    seen = {a["id"] for a in clinician.get(f"{API}/alerts").json()["items"]}
    assert {str(clinical.id), str(visit_alert.id)} <= seen
    therapist = client_as("therapist", [site])
    assert therapist.get(f"{API}/alerts/{visit_alert.id}").status_code == 200
    assert (
        therapist.post(
            f"{API}/alerts/{visit_alert.id}/acknowledge", json={"note": "seen"}
        ).status_code
        == 403
    )
