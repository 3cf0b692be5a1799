"""Whole-request idempotency (app/idempotency.py), through the API, on both databases: a write
sent again with the same Idempotency-Key gets the first answer and is not done twice. The
in-flight 409 and the durability of a kept answer across a SIGKILL are tested against a real
server process (tests/durability/test_idempotency.py)."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock, idempotency
from app.errors import Conflict
from app.models import AuditRecord, IdempotencyKey, TherapistNote, VitalReading
from app.notes import service as notes_service
from app.permissions import Role
from tests.conftest import TEST_PASSWORD
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study
from tests.vitals.readings import reading

NOTE_TEXT = "Participant calm; talked about her brother for the first time."


@pytest.fixture
def trial(db):
    study = make_study(db)
    site = make_site(db, study)
    participant = make_participant(db, site, stage="enrolled")
    return study, site, participant, make_dosing_session(db, participant)


@pytest.fixture
def therapist(client_as, trial):
    return client_as(Role.THERAPIST, sites=[trial[1]])


def _note(client, participant, key=None, **fields):
    body = {
        "text": NOTE_TEXT,
        "written_at": "2026-02-02T16:00:00Z",
        "author_id": str(client.user.id),
    } | fields
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/api/v1/participants/{participant.id}/notes", json=body, headers=headers)


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_a_retried_note_is_written_once_and_gets_the_first_answer(db, therapist, trial):
    participant = trial[2]
    key = str(uuid.uuid4())
    first = _note(therapist, participant, key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = _note(therapist, participant, key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]  # its own request
    assert _count(db, TherapistNote) == 1
    creations = select(func.count()).where(
        AuditRecord.entity_type == "therapist_notes", AuditRecord.action == "create"
    )
    assert db.scalar(creations) == 1
    # without a key, the same body is another note: the key is what made the retry safe
    assert _note(therapist, participant).status_code == 201
    assert _count(db, TherapistNote) == 2


def test_the_same_json_in_another_key_order_or_spacing_is_the_same_request(therapist, trial):
    participant = trial[2]
    body = {"written_at": "2026-02-02T16:00:00Z", "text": NOTE_TEXT}
    body["author_id"] = str(therapist.user.id)
    first = therapist.post(
        f"/api/v1/participants/{participant.id}/notes", json=body, headers={"Idempotency-Key": "k"}
    )
    assert first.status_code == 201
    spaced = "{\n" + ",\n".join(f'  "{k}": "{v}"' for k, v in reversed(body.items())) + "\n}"
    again = therapist.post(
        f"/api/v1/participants/{participant.id}/notes",
        content=spaced,
        headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content


def test_a_replayed_reading_answers_201_as_the_first_did(db, client, trial):
    dosing_session = trial[3]
    url = f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings"
    body = reading(30)
    first = client.post(url, json=body, headers={"Idempotency-Key": "tablet-7:reading-1"})
    assert first.status_code == 201, first.text
    keyed = client.post(url, json=body, headers={"Idempotency-Key": "tablet-7:reading-1"})
    assert (keyed.status_code, keyed.headers["Idempotent-Replayed"]) == (201, "true")
    assert keyed.content == first.content
    # the reading's own id makes it idempotent too, but says so with a 200
    assert client.post(url, json=body).status_code == 200
    assert _count(db, VitalReading) == 1


def test_a_key_used_for_another_request_is_refused_and_nothing_is_done(db, therapist, trial):
    participant = trial[2]
    assert _note(therapist, participant, "key-1").status_code == 201
    other = _note(therapist, participant, "key-1", text="Another note altogether.")
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    problem = other.json()
    assert problem["type"].endswith("/idempotency-key-reused")
    assert "used for another request" in problem["detail"]
    assert _count(db, TherapistNote) == 1
    # another participant (path) with the same key and body is another request too
    elsewhere = make_participant(db, trial[1], "01-002", stage="enrolled")
    assert _note(therapist, elsewhere, "key-1").status_code == 422


def test_keys_are_the_callers_own_and_the_routes_own(db, client_as, therapist, trial):
    site, participant = trial[1], trial[2]
    colleague = client_as(Role.THERAPIST, sites=[site])
    assert _note(therapist, participant, "shared").status_code == 201
    theirs = _note(colleague, participant, "shared")
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert _count(db, TherapistNote) == 2
    # the same key on another route (a PATCH of the note) is another key
    note_id = theirs.json()["id"]
    patched = colleague.patch(
        f"/api/v1/notes/{note_id}",
        json={"text": "Corrected wording.", "reason": "typo"},
        headers={"Idempotency-Key": "shared"},
    )
    assert patched.status_code == 200, patched.text
    assert "Idempotent-Replayed" not in patched.headers
    assert _count(db, IdempotencyKey) == 3


def test_a_refusal_is_kept_and_replayed(db, client_as, therapist, trial):
    site, participant = trial[1], trial[2]
    coordinator = client_as(Role.COORDINATOR, sites=[site])
    body = {"text": NOTE_TEXT, "written_at": "2026-02-02T16:00:00Z"}
    body["author_id"] = str(coordinator.user.id)  # not a note's author: the route refuses it
    url = f"/api/v1/participants/{participant.id}/notes"
    refused = therapist.post(url, json=body, headers={"Idempotency-Key": "refused-1"})
    assert refused.status_code == 422, refused.text
    assert "is a coordinator" in refused.text
    again = therapist.post(url, json=body, headers={"Idempotency-Key": "refused-1"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (422, "true")
    assert again.content == refused.content
    assert again.headers["content-type"] == "application/problem+json"
    assert _count(db, TherapistNote) == 0


def test_a_refusal_keeps_nothing_the_route_wrote_before_it(db, therapist, trial, monkeypatch):
    create = notes_service.create

    def written_then_refused(*args, **kwargs):
        create(*args, **kwargs)
        raise Conflict("the session was closed meanwhile")

    monkeypatch.setattr(notes_service, "create", written_then_refused)
    refused = _note(therapist, trial[2], "conflict-1")
    assert refused.status_code == 409
    monkeypatch.setattr(notes_service, "create", create)
    again = _note(therapist, trial[2], "conflict-1")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (409, "true")
    assert _count(db, TherapistNote) == 0
    notes_audited = select(func.count()).where(AuditRecord.entity_type == "therapist_notes")
    assert db.scalar(notes_audited) == 0
    assert _count(db, IdempotencyKey) == 1


def test_a_refusal_before_the_caller_is_known_is_not_kept(db, anonymous_client, client_as, trial):
    participant = trial[2]
    url = f"/api/v1/participants/{participant.id}/notes"
    body = {"text": NOTE_TEXT, "written_at": "2026-02-02T16:00:00Z"}
    assert (
        anonymous_client.post(url, json=body, headers={"Idempotency-Key": "k"}).status_code == 401
    )
    monitor = client_as(Role.SPONSOR)
    forbidden = monitor.post(url, json=body, headers={"Idempotency-Key": "k"})
    assert forbidden.status_code == 403
    assert _count(db, IdempotencyKey) == 0


def test_a_body_that_fails_validation_is_kept_too(db, therapist, trial):
    participant = trial[2]
    first = _note(therapist, participant, "bad-body", written_at="yesterday")
    assert first.status_code == 422
    again = _note(therapist, participant, "bad-body", written_at="yesterday")
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (422, "true")


def test_a_failure_is_not_kept_and_the_key_can_be_used_again(db, therapist, trial, monkeypatch):
    participant = trial[2]
    create = notes_service.create

    def failing(*args, **kwargs):
        create(*args, **kwargs)  # written, then the request fails: all of it rolls back
        raise RuntimeError("the disk fell off")

    monkeypatch.setattr(notes_service, "create", failing)
    failed = _note(therapist, participant, "retry-me")
    assert failed.status_code == 500
    assert _count(db, IdempotencyKey) == 0 and _count(db, TherapistNote) == 0
    monkeypatch.setattr(notes_service, "create", create)
    retried = _note(therapist, participant, "retry-me")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert _count(db, TherapistNote) == 1


def test_a_kept_answer_is_forgotten_after_the_keep_time(db, therapist, trial, monkeypatch):
    participant = trial[2]
    assert _note(therapist, participant, "old").status_code == 201
    later = clock.utcnow() + timedelta(hours=24, minutes=1)
    monkeypatch.setattr(idempotency, "utcnow", lambda: later)
    # the same key is a new key now: another body is taken, not refused
    fresh = _note(therapist, participant, "old", text="A day later.")
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert _count(db, TherapistNote) == 2
    assert _note(therapist, participant, "other").status_code == 201
    # the scheduler's sweep forgets what is older than the keep time
    assert idempotency.forget_expired(db, later + timedelta(hours=24, minutes=1)) == 2
    assert _count(db, IdempotencyKey) == 0


@pytest.mark.parametrize(
    "key", [b"", b"with space", b"x" * 256, "naïve".encode(), b"semi;colon", b'quote"d']
)
def test_a_malformed_key_is_refused(db, therapist, trial, key):
    response = therapist.post(
        f"/api/v1/participants/{trial[2].id}/notes",
        json={"text": NOTE_TEXT, "written_at": "2026-02-02T16:00:00Z"},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-idempotency-key")
    assert "1 to 255 characters" in response.json()["detail"]
    assert _count(db, TherapistNote) == 0


def test_a_read_ignores_the_key(therapist, trial):
    url = f"/api/v1/participants/{trial[2].id}/notes"
    response = therapist.get(url, headers={"Idempotency-Key": "not even valid"})
    assert response.status_code == 200


def test_a_route_that_shows_a_secret_once_takes_no_key(db, client, anonymous_client):
    issued = client.post(
        "/api/v1/auth/tokens", json={"label": "laptop"}, headers={"Idempotency-Key": "t-1"}
    )
    assert issued.status_code == 400
    assert "shows a secret once" in issued.json()["detail"]
    login = anonymous_client.post(
        "/api/v1/auth/login",
        json={"username": "tester", "password": TEST_PASSWORD},
        headers={"Idempotency-Key": "t-2"},
    )
    assert login.status_code == 400
    assert _count(db, IdempotencyKey) == 0


def test_the_openapi_document_describes_the_header_on_writes(api):
    document = api.openapi()
    post = document["paths"]["/api/v1/participants/{participant_id}/notes"]["post"]
    (parameter,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert parameter["in"] == "header" and parameter["required"] is False
    assert parameter["schema"]["maxLength"] == 255
    assert "Idempotent-Replayed" in post["responses"]["201"]["headers"]
    get = document["paths"]["/api/v1/participants/{participant_id}/notes"]["get"]
    assert all(p["name"] != "Idempotency-Key" for p in get.get("parameters", []))
    tokens = document["paths"]["/api/v1/auth/tokens"]["post"]
    assert all(p["name"] != "Idempotency-Key" for p in tokens.get("parameters", []))


def test_the_web_clients_forms_ignore_the_key(db, anonymous_client):
    page = anonymous_client.post(
        "/login",
        data={"username": "nobody", "password": "wrong"},
        headers={"Idempotency-Key": "not even valid"},
    )
    assert page.status_code != 400
    assert _count(db, IdempotencyKey) == 0
