from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import clock
from app.models import AuditRecord
from app.protocols import service as protocols
from app.protocols.loader import load_protocol_file
from app.studies import service as studies
from app.studies.schemas import StudyCreate
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site

ONSET = "2026-02-02T09:15:00Z"
PROTOCOL = load_protocol_file(MDMA)  # parsed once, not once per test


@pytest.fixture
def trial(db):
    version, _ = protocols.store(db, PROTOCOL)
    study = studies.create_study(
        db, StudyCreate(code="MAPP-T", name="Test study", protocol_key=version.protocol_key)
    )
    site = make_site(db, study)
    participant = make_participant(db, site, stage="enrolled")
    other = make_participant(db, site, "01-002", stage="enrolled")
    dosing_session = make_dosing_session(db, participant)
    other_session = make_dosing_session(db, other)
    return SimpleNamespace(
        participant=participant, other=other, session=dosing_session, other_session=other_session
    )


def _event(**overrides):
    body = {
        "verbatim_term": "Headache",
        "onset_at": ONSET,
        "severity": "mild",
        "relatedness": "possible",
        "expectedness": "expected",
        "action_taken": "not_applicable",
        "outcome": "recovering",
    }
    return body | overrides


def _post(client, participant, **overrides):
    return client.post(
        f"/api/v1/participants/{participant.id}/adverse-events", json=_event(**overrides)
    )


def _create(client, participant, **overrides):
    response = _post(client, participant, **overrides)
    assert response.status_code == 201, response.text
    return response.json()


def _audit(db, entity_id):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == "adverse_events", AuditRecord.entity_id == str(entity_id)
    )
    return db.scalars(stmt.order_by(AuditRecord.id)).all()


def test_a_new_event_is_stored_ongoing_and_not_serious_by_default(client, trial):
    before = clock.utcnow()
    created = _create(client, trial.participant, dosing_session_id=str(trial.session.id))
    assert created["serious"] is False
    assert created["ongoing"] is True
    assert created["seriousness_criteria"] == []
    assert created["sponsor_report_due_at"] is None
    assert created["sponsor_report_overdue"] is None
    assert created["ctcae_grade"] is None and created["ctcae_version"] is None
    assert created["record_status"] == "valid"
    assert created["dosing_session_id"] == str(trial.session.id)
    assert created["onset_at"] == "2026-02-02T09:15:00Z"
    aware = datetime.fromisoformat(created["site_aware_at"])
    assert before - timedelta(seconds=1) <= aware <= clock.utcnow()
    fetched = client.get(f"/api/v1/adverse-events/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_severe_is_not_serious_and_a_grade_gets_its_ctcae_version(client, trial):
    severe = _create(client, trial.participant, severity="severe", ctcae_grade=3)
    assert severe["serious"] is False
    assert severe["sponsor_report_due_at"] is None
    assert (severe["ctcae_grade"], severe["ctcae_version"]) == (3, "5.0")
    older = _create(client, trial.participant, ctcae_grade=2, ctcae_version="4.03")
    assert older["ctcae_version"] == "4.03"
    serious = _create(
        client,
        trial.participant,
        severity="mild",
        seriousness_criteria=["important_medical_event", "hospitalisation", "hospitalisation"],
    )
    assert serious["serious"] is True
    assert serious["seriousness_criteria"] == ["hospitalisation", "important_medical_event"]


def test_a_serious_event_must_reach_the_sponsor_within_24_hours_of_site_awareness(
    client, trial, monkeypatch
):
    aware = clock.utcnow() - timedelta(hours=2)
    created = _create(
        client,
        trial.participant,
        seriousness_criteria=["hospitalisation"],
        site_aware_at=aware.isoformat(),
    )
    due = datetime.fromisoformat(created["sponsor_report_due_at"])
    assert due == aware + timedelta(hours=24)
    assert created["sponsor_report_overdue"] is False

    real_now = clock.utcnow
    monkeypatch.setattr(clock, "utcnow", lambda: real_now() + timedelta(hours=23))
    late = client.get(f"/api/v1/adverse-events/{created['id']}").json()
    assert late["sponsor_report_overdue"] is True

    reported = client.patch(
        f"/api/v1/adverse-events/{created['id']}",
        json={"sponsor_reported_at": real_now().isoformat(), "reason": "SAE form faxed"},
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["sponsor_report_overdue"] is False


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"end_at": "2026-02-02T09:00:00Z"}, "end_at", "is before onset_at"),
        ({"onset_at": "2999-01-01T00:00:00Z"}, "onset_at", "in the future"),
        (
            {"ctcae_grade": 2, "ctcae_version": None},
            "ctcae_version",
            "ctcae_version is required when ctcae_grade is given",
        ),
        (
            {"ctcae_grade": 5, "seriousness_criteria": ["death"], "end_at": "2026-02-03T00:00:00Z"},
            "outcome",
            "CTCAE grade 5 is death related to the event: outcome must be fatal",
        ),
        (
            {"ctcae_grade": 5, "outcome": "fatal", "end_at": "2026-02-03T00:00:00Z"},
            "seriousness_criteria",
            "seriousness_criteria must include death",
        ),
        (
            {"outcome": "fatal", "seriousness_criteria": ["death"]},
            "end_at",
            "a fatal outcome requires end_at",
        ),
        (
            {"site_aware_at": "2026-02-01T00:00:00Z"},
            "site_aware_at",
            "is before onset_at: the site cannot have learned",
        ),
        ({"severity": "life_threatening"}, "severity", "Input should be"),
        ({"ctcae_grade": 6}, "ctcae_grade", "less than or equal to 5"),
        ({"seriousness_criteria": ["scary"]}, "seriousness_criteria.0", "Input should be"),
    ],
)
def test_inconsistent_events_are_refused_with_the_field_and_reason(
    client, trial, overrides, field, message
):
    response = _post(client, trial.participant, **overrides)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    listed = client.get(f"/api/v1/participants/{trial.participant.id}/adverse-events").json()
    assert listed["items"] == []


def test_a_fatal_grade_5_event_with_death_and_an_end_is_accepted(client, trial):
    fatal = _create(
        client,
        trial.participant,
        verbatim_term="Cardiac arrest",
        severity="severe",
        ctcae_grade=5,
        outcome="fatal",
        seriousness_criteria=["death"],
        end_at="2026-02-02T11:00:00Z",
    )
    assert fatal["serious"] is True
    assert fatal["ongoing"] is False


def test_the_dosing_session_must_be_the_participants_own(client, trial):
    response = _post(client, trial.participant, dosing_session_id=str(trial.other_session.id))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "dosing_session_id"
    assert "participant 01-001 has no dosing session" in error["message"]


def test_unknown_participant_or_event_is_404(client, trial):
    missing = "01900000-0000-7000-8000-000000000000"
    assert (
        client.post(f"/api/v1/participants/{missing}/adverse-events", json=_event()).status_code
        == 404
    )
    assert client.get(f"/api/v1/adverse-events/{missing}").status_code == 404


def test_lists_filter_by_seriousness_and_participant_and_page_by_cursor(client, trial):
    mild = _create(client, trial.participant)
    sae = _create(client, trial.participant, seriousness_criteria=["life_threatening"])
    theirs = _create(client, trial.other, seriousness_criteria=["hospitalisation"])

    def ids(url):
        response = client.get(url)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids("/api/v1/adverse-events?serious=true") == [sae["id"], theirs["id"]]
    assert ids("/api/v1/adverse-events?serious=false") == [mild["id"]]
    assert ids(f"/api/v1/adverse-events?serious=true&participant_id={trial.other.id}") == [
        theirs["id"]
    ]
    assert ids(f"/api/v1/participants/{trial.participant.id}/adverse-events") == [
        mild["id"],
        sae["id"],
    ]
    first = client.get("/api/v1/adverse-events?limit=2").json()
    assert [i["id"] for i in first["items"]] == [mild["id"], sae["id"]]
    second = client.get(f"/api/v1/adverse-events?limit=2&cursor={first['next_cursor']}").json()
    assert [i["id"] for i in second["items"]] == [theirs["id"]]
    assert second["next_cursor"] is None


def test_a_correction_needs_a_reason_and_keeps_the_original_in_the_audit_trail(client, db, trial):
    created = _create(client, trial.participant, severity="mild", ctcae_grade=1)
    url = f"/api/v1/adverse-events/{created['id']}"
    no_reason = client.patch(url, json={"severity": "moderate"})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"

    corrected = client.patch(
        url, json={"severity": "moderate", "ctcae_grade": 2, "reason": "Rater re-graded"}
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    assert (body["severity"], body["ctcae_grade"]) == ("moderate", 2)
    unchanged = {k: v for k, v in created.items() if k not in {"severity", "ctcae_grade"}}
    assert {k: body[k] for k in unchanged if k != "updated_at"} == {
        k: v for k, v in unchanged.items() if k != "updated_at"
    }

    create_record, correction = _audit(db, created["id"])
    assert create_record.action == "create"
    assert create_record.after["severity"] == "mild"
    assert correction.action == "correct"
    assert correction.before == {"severity": "mild", "ctcae_grade": 1}
    assert correction.after == {"severity": "moderate", "ctcae_grade": 2}
    assert correction.reason == "Rater re-graded"


def test_a_correction_is_checked_against_the_whole_record(client, db, trial):
    created = _create(client, trial.participant)
    url = f"/api/v1/adverse-events/{created['id']}"
    fatal = client.patch(
        url, json={"outcome": "fatal", "seriousness_criteria": ["death"], "reason": "Died"}
    )
    assert fatal.status_code == 422
    assert [e["field"] for e in fatal.json()["errors"]] == ["end_at"]
    emptied = client.patch(url, json={"severity": None, "reason": "Oops"})
    assert emptied.status_code == 422
    assert emptied.json()["errors"][0]["field"] == "severity"
    same = client.patch(url, json={"severity": "mild", "reason": "No change"})
    assert same.status_code == 422
    assert "changes nothing" in same.json()["detail"]
    ended = client.patch(url, json={"end_at": "2026-02-02T12:00:00Z", "reason": "Resolved"})
    assert ended.status_code == 200
    assert ended.json()["ongoing"] is False
    assert client.get(url).json()["severity"] == "mild"
    assert [r.action for r in _audit(db, created["id"])] == ["create", "correct"]


def test_entered_in_error_keeps_the_row_and_freezes_it(client, db, trial):
    created = _create(client, trial.participant, seriousness_criteria=["hospitalisation"])
    url = f"/api/v1/adverse-events/{created['id']}"
    assert client.post(f"{url}/entered-in-error", json={}).status_code == 422
    marked = client.post(f"{url}/entered-in-error", json={"reason": "Wrong participant"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["record_status"] == "entered_in_error"
    assert marked.json()["error_reason"] == "Wrong participant"
    assert marked.json()["sponsor_report_due_at"] is None

    kept = client.get(url)
    assert kept.status_code == 200
    assert kept.json()["verbatim_term"] == "Headache"
    listing = f"/api/v1/participants/{trial.participant.id}/adverse-events"
    assert client.get(listing).json()["items"] == []
    shown = client.get(f"{listing}?include_entered_in_error=true").json()["items"]
    assert [i["id"] for i in shown] == [created["id"]]

    edit = client.patch(url, json={"severity": "severe", "reason": "Too late"})
    assert edit.status_code == 409
    again = client.post(f"{url}/entered-in-error", json={"reason": "Twice"})
    assert again.status_code == 409
    records = _audit(db, created["id"])
    assert [r.action for r in records] == ["create", "entered_in_error"]
    assert records[1].reason == "Wrong participant"
    assert records[1].after == {
        "record_status": "entered_in_error",
        "error_reason": "Wrong participant",
    }


@pytest.mark.parametrize(
    ("overrides", "field", "why"),
    [
        ({"onset_at": "1900-01-01T00:00:00Z"}, "onset_at", "before the participant's consent"),
        ({"onset_at": "2026-01-01T23:59:59Z"}, "onset_at", "before the participant's consent"),
        ({"onset_at": 1700000000}, "onset_at", "give ISO 8601 text"),
        ({"ctcae_grade": "3"}, "ctcae_grade", "Input should be a valid integer"),
        ({"ctcae_grade": True}, "ctcae_grade", "Input should be a valid integer"),
        (
            {"end_at": "2026-02-02T09:14:59Z"},
            "end_at",
            "allowed: from 2026-02-02T09:15:00+00:00 to ",
        ),
    ],
)
def test_an_event_before_consent_or_with_loosely_typed_values_is_refused_and_not_stored(
    client, db, trial, overrides, field, why
):
    response = _post(client, trial.participant, **overrides)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    assert why in errors[0]["message"]
    listed = client.get(f"/api/v1/participants/{trial.participant.id}/adverse-events").json()
    assert listed["items"] == []
    audited = select(AuditRecord).where(AuditRecord.entity_type == "adverse_events")
    assert db.scalars(audited).all() == []


def test_an_event_may_begin_on_the_consent_day_not_before(client, trial):
    # make_participant consents on 2026-01-02 at a UTC site
    the_eve = _post(client, trial.participant, onset_at="2026-01-01T23:59:59Z")
    assert the_eve.status_code == 422
    created = _create(client, trial.participant, onset_at="2026-01-02T00:00:00Z")
    assert created["onset_at"] == "2026-01-02T00:00:00Z"
