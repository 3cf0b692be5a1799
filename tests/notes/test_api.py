from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import clock
from app.models import AuditRecord, Site
from app.permissions import Role
from app.protocols import service as protocols
from app.protocols.loader import load_protocol_file
from app.studies import service as studies
from app.studies.schemas import StudyCreate
from app.users.service import create_user
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site

PROTOCOL = load_protocol_file(MDMA)  # parsed once, not once per test
PASSWORD = "a long password 123"


@pytest.fixture
def trial(db, monkeypatch):
    version, _ = protocols.store(db, PROTOCOL)
    study = studies.create_study(
        db, StudyCreate(code="MAPP-T", name="Test study", protocol_key=version.protocol_key)
    )
    site = make_site(db, study)
    elsewhere = make_site(db, study, "S02")
    participant = make_participant(db, site, stage="enrolled")
    other = make_participant(db, site, "01-002", stage="enrolled")

    def user(username, role, site_ids):
        return create_user(
            db,
            username=username,
            display_name=username.title(),
            role=role,
            password=PASSWORD,
            site_ids=site_ids,
        )

    trial = SimpleNamespace(
        participant=participant,
        other=other,
        session=make_dosing_session(db, participant),
        other_session=make_dosing_session(db, other),
        therapist=user("therapist", Role.THERAPIST, [site.id]),
        clinician=user("clinician", Role.CLINICIAN, [site.id]),
        coordinator=user("coordinator", Role.COORDINATOR, [site.id]),
        away=user("away", Role.THERAPIST, [elsewhere.id]),
    )
    return trial


def _note(author, **fields):
    body = {
        "text": "Participant calm; talked about her brother for the first time.",
        "written_at": "2026-02-02T16:00:00Z",
        "author_id": str(author.id),
    }
    return body | fields


def _post(client, participant, body):
    return client.post(f"/api/v1/participants/{participant.id}/notes", json=body)


def _create(client, participant, body):
    response = _post(client, participant, body)
    assert response.status_code == 201, response.text
    return response.json()


def _audit(db, note_id):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == "therapist_notes", AuditRecord.entity_id == note_id
    )
    return db.scalars(stmt.order_by(AuditRecord.id)).all()


def test_a_therapist_or_clinician_writes_a_note_about_a_session(client, trial):
    created = _create(
        client,
        trial.participant,
        _note(
            trial.therapist,
            dosing_session_id=str(trial.session.id),
            visit_id=str(trial.session.visit_id),
        ),
    )
    assert created["author_id"] == str(trial.therapist.id)
    assert created["dosing_session_id"] == str(trial.session.id)
    assert created["written_at"] == "2026-02-02T16:00:00Z"
    assert created["record_status"] == "valid"
    assert client.get(f"/api/v1/notes/{created['id']}").json() == created
    by_clinician = _create(client, trial.participant, _note(trial.clinician, text="Vitals fine."))
    assert by_clinician["visit_id"] is None


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("coordinator", "author_id", "is a coordinator; notes are written by a therapist or"),
        ("away", "author_id", "does not work at the site of participant 01-001"),
        ("nobody", "author_id", "does not exist"),
        ("their_session", "dosing_session_id", "participant 01-001 has no dosing session"),
        ("their_visit", "visit_id", "participant 01-001 has no visit"),
        ("future", "written_at", "is after now (in the future"),
        ("empty", "text", "at least 1 character"),
        ("naive", "written_at", "must carry a timezone offset"),
    ],
)
def test_refused_notes_name_the_field_and_why(client, trial, case, field, message):
    body = {
        "coordinator": _note(trial.coordinator),
        "away": _note(trial.away),
        "nobody": _note(trial.therapist, author_id="01900000-0000-7000-8000-000000000000"),
        "their_session": _note(trial.therapist, dosing_session_id=str(trial.other_session.id)),
        "their_visit": _note(trial.therapist, visit_id=str(trial.other_session.visit_id)),
        "future": _note(trial.therapist, written_at="2999-01-01T00:00:00Z"),
        "empty": _note(trial.therapist, text="   "),
        "naive": _note(trial.therapist, written_at="2026-02-02T16:00:00"),
    }[case]
    response = _post(client, trial.participant, body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    listed = client.get(f"/api/v1/participants/{trial.participant.id}/notes").json()
    assert listed["items"] == []


def test_notes_are_listed_per_participant_by_cursor(client, trial):
    first = _create(client, trial.participant, _note(trial.therapist, text="One"))
    second = _create(client, trial.participant, _note(trial.therapist, text="Two"))
    _create(client, trial.other, _note(trial.therapist, text="Theirs"))
    url = f"/api/v1/participants/{trial.participant.id}/notes"
    page = client.get(f"{url}?limit=1").json()
    assert [n["id"] for n in page["items"]] == [first["id"]]
    rest = client.get(f"{url}?limit=1&cursor={page['next_cursor']}").json()
    assert [n["text"] for n in rest["items"]] == ["Two"]
    assert rest["next_cursor"] is None
    assert client.get(f"/api/v1/notes/{second['id']}").json()["text"] == "Two"
    assert (
        client.get("/api/v1/participants/01900000-0000-7000-8000-000000000000/notes").status_code
        == 404
    )


def test_an_edit_needs_a_reason_and_the_previous_text_stays_in_the_audit_trail(client, db, trial):
    created = _create(client, trial.participant, _note(trial.therapist, text="Calm at 14:00"))
    url = f"/api/v1/notes/{created['id']}"
    no_reason = client.patch(url, json={"text": "Calm at 15:00"})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    assert client.get(url).json()["text"] == "Calm at 14:00"

    edited = client.patch(url, json={"text": "Calm at 15:00", "reason": "Wrong hour"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["text"] == "Calm at 15:00"
    assert edited.json()["written_at"] == created["written_at"]
    create_record, correction = _audit(db, created["id"])
    assert create_record.after["text"] == "Calm at 14:00"
    assert correction.action == "correct"
    assert correction.before == {"text": "Calm at 14:00"}
    assert correction.after == {"text": "Calm at 15:00"}
    assert correction.reason == "Wrong hour"


def test_a_note_entered_in_error_is_kept_but_cannot_be_edited(client, db, trial):
    created = _create(client, trial.participant, _note(trial.therapist))
    url = f"/api/v1/notes/{created['id']}"
    marked = client.post(f"{url}/entered-in-error", json={"reason": "Wrong participant"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["record_status"] == "entered_in_error"
    assert client.get(url).json()["text"] == created["text"]
    listing = f"/api/v1/participants/{trial.participant.id}/notes"
    assert client.get(listing).json()["items"] == []
    assert len(client.get(f"{listing}?include_entered_in_error=true").json()["items"]) == 1
    edit = client.patch(url, json={"text": "Rewritten", "reason": "Try anyway"})
    assert edit.status_code == 409
    assert "entered in error" in edit.json()["detail"]
    assert [r.action for r in _audit(db, created["id"])] == ["create", "entered_in_error"]


def _refused_and_nothing_stored(client, db, participant, response, field):
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field], errors
    listed = client.get(f"/api/v1/participants/{participant.id}/notes").json()
    assert listed["items"] == []
    audited = select(AuditRecord).where(AuditRecord.entity_type == "therapist_notes")
    assert db.scalars(audited).all() == []
    return errors[0]["message"]


@pytest.mark.parametrize(
    ("written_at", "why"),
    [
        ("0001-01-01T00:00:00Z", "is before the participant's consent date 2026-01-02"),
        ("2026-01-01T23:59:59Z", "is before the participant's consent date 2026-01-02"),
        ("0001-01-01T00:00:00+01:00", "is outside the years 1-9999 in UTC"),  # was a 500
        (1700000000, "give ISO 8601 text, e.g. 2026-01-31T09:00:00Z, not the number 1700000000"),
        ("1700000000", "give ISO 8601 text"),
    ],
)
def test_a_note_dated_before_consent_or_not_as_a_time_is_refused(
    client, db, trial, written_at, why
):
    response = _post(client, trial.participant, _note(trial.therapist, written_at=written_at))
    message = _refused_and_nothing_stored(client, db, trial.participant, response, "written_at")
    assert why in message


def test_consent_begins_at_midnight_at_the_participant_site(client, db, trial):
    db.get(Site, trial.participant.site_id).timezone = "America/Denver"
    db.flush()
    eve = _post(
        client, trial.participant, _note(trial.therapist, written_at="2026-01-01T23:59:59-07:00")
    )
    message = _refused_and_nothing_stored(client, db, trial.participant, eve, "written_at")
    assert "consent date 2026-01-02 (site time America/Denver)" in message
    assert "allowed: from 2026-01-02T07:00:00+00:00 to " in message
    _create(
        client, trial.participant, _note(trial.therapist, written_at="2026-01-02T00:00:00-07:00")
    )


def test_a_note_may_be_dated_up_to_the_clock_skew_ahead_of_the_server(
    client, db, trial, monkeypatch
):
    now = clock.utcnow().replace(microsecond=0)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    beyond = now + timedelta(seconds=300, milliseconds=1)
    ahead = _post(client, trial.participant, _note(trial.therapist, written_at=beyond.isoformat()))
    message = _refused_and_nothing_stored(client, db, trial.participant, ahead, "written_at")
    assert "in the future, beyond the allowed clock skew of 300 s" in message
    assert (
        f"allowed: from 2026-01-02T00:00:00+00:00 to {(now + timedelta(seconds=300)).isoformat()}"
        in message
    )
    at_skew = (now + timedelta(seconds=300)).isoformat()
    assert _create(client, trial.participant, _note(trial.therapist, written_at=at_skew))
