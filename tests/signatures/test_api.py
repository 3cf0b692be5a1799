"""E-signatures through HTTP: re-authentication, who signs what, binding to the record version,
voiding by an edit, and the audit trail of all of it."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from app.audit import signed_records
from app.audit.recorder import change_reason
from app.auth import tokens
from app.config import get_settings
from app.models import AdverseEvent, AuditRecord, DosingSession, Signature, TherapistNote
from app.permissions import Role
from app.users.service import create_user
from tests.signatures.conftest import API, PASSWORD


def _sign(client, person, path, meaning, *, password=PASSWORD, username=None):
    body = {"meaning": meaning, "username": username or person.username, "password": password}
    return client.post(f"{API}/{path}/signatures", json=body, headers=person.headers)


def _event_path(trial):
    return f"adverse-events/{trial.event.id}"


def _note_path(trial):
    return f"notes/{trial.note.id}"


def _session_path(trial):
    return f"dosing-sessions/{trial.dosing_session.id}"


def _signed(client, person, path, meaning):
    response = _sign(client, person, path, meaning)
    assert response.status_code == 201, response.text
    return response.json()


def _read(client, person, path):
    response = client.get(f"{API}/{path}", headers=person.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _signature_count(db):
    return db.scalar(select(func.count()).select_from(Signature))


def _audit(db, entity_type, entity_id):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == entity_type, AuditRecord.entity_id == str(entity_id)
    )
    return db.scalars(stmt.order_by(AuditRecord.sequence)).all()


def _utc(text):
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0
    return value.astimezone(UTC)


# --- signing and showing ------------------------------------------------------------------------


def test_a_clinician_signs_an_adverse_event_and_the_signature_shows_where_it_is_read(
    client, db, trial
):
    before = datetime.now(UTC)
    signature = _signed(client, trial.clinician, _event_path(trial), "review")

    assert signature["printed_name"] == "Dr Clinician"  # 11.50: printed name, time, meaning
    assert signature["meaning"] == "review"
    assert before <= _utc(signature["signed_at"]) <= datetime.now(UTC)
    assert signature["signer_id"] == str(trial.clinician.user.id)
    assert signature["status"] == "valid"
    assert signature["voided_at"] is None and signature["void_reason"] is None
    assert signature["valid_for_current_version"] is True
    # 11.70: bound to this record, in this version
    assert (signature["entity_type"], signature["entity_id"]) == (
        "adverse_events",
        str(trial.event.id),
    )
    event = db.get(AdverseEvent, trial.event.id)
    assert signature["record_hash"] == signed_records.record_hash(event)

    assert _read(client, trial.clinician, _event_path(trial))["signatures"] == [signature]
    listed = client.get(
        f"{API}/participants/{trial.participant.id}/adverse-events", headers=trial.clinician.headers
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"][0]["signatures"] == [signature]

    [created] = _audit(db, "signatures", signature["id"])
    assert (created.action, created.reason) == ("create", "e-signature: review of adverse event")
    assert created.actor == "clinician:clinician"
    assert created.after["meaning"] == "review"
    assert created.after["record_hash"] == signature["record_hash"]
    assert created.after["entity_id"] == str(trial.event.id)


def test_a_clinician_signs_the_close_out_of_an_ended_dosing_session(client, db, trial):
    signature = _signed(client, trial.clinician, _session_path(trial), "approval")

    shown = _read(client, trial.clinician, _session_path(trial))["signatures"]
    assert shown == [signature]
    assert shown[0]["entity_type"] == "dosing_sessions"
    assert shown[0]["valid_for_current_version"] is True


def test_a_session_still_running_cannot_be_closed_out(client, db, trial):
    trial.dosing_session.status, trial.dosing_session.ended_at = "in_progress", None
    db.flush()

    response = _sign(client, trial.clinician, _session_path(trial), "approval")

    assert response.status_code == 409, response.text
    assert "ended" in response.json()["detail"]
    assert _signature_count(db) == 0


def test_a_therapist_signs_their_note_and_a_clinician_reviews_it(client, db, trial):
    authored = _signed(client, trial.therapist, _note_path(trial), "authorship")
    reviewed = _signed(client, trial.clinician, _note_path(trial), "review")

    assert authored["printed_name"] == "Dr Therapist"
    assert reviewed["printed_name"] == "Dr Clinician"
    assert _read(client, trial.therapist, _note_path(trial))["signatures"] == [authored, reviewed]


# --- re-authentication --------------------------------------------------------------------------


def test_signing_needs_the_password_again_and_a_wrong_one_stores_nothing(client, db, trial):
    path = f"{API}/{_event_path(trial)}/signatures"
    headers = trial.clinician.headers
    without_password = {"meaning": "review", "username": "clinician"}
    without_username = {"meaning": "review", "password": PASSWORD}
    assert client.post(path, json=without_password, headers=headers).status_code == 422
    assert client.post(path, json=without_username, headers=headers).status_code == 422
    empty = without_password | {"password": ""}
    assert client.post(path, json=empty, headers=headers).status_code == 422

    wrong = _sign(client, trial.clinician, _event_path(trial), "review", password="not it at all")

    assert wrong.status_code == 401, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["title"] == "Re-authentication failed"
    assert _signature_count(db) == 0
    # the refused attempt is in the audit trail (the request committed it), without the password
    [refused] = _audit(db, "adverse_events", trial.event.id)[-1:]
    assert refused.action == "signature_refused"
    assert refused.actor == "clinician:clinician"
    assert refused.reason == "re-authentication failed: wrong password"
    assert refused.after == {"meaning": "review"}
    assert "not it at all" not in str(refused.before) + str(refused.after) + refused.reason
    # and it counts toward the sign-in lockout
    db.refresh(trial.clinician.user)
    assert trial.clinician.user.failed_login_count == 1

    assert _sign(client, trial.clinician, _event_path(trial), "review").status_code == 201
    db.refresh(trial.clinician.user)
    assert trial.clinician.user.failed_login_count == 0


def test_a_signature_is_made_with_the_callers_own_username_only(client, db, trial):
    # the colleague's username and the colleague's real password, from the clinician's token
    response = _sign(
        client, trial.clinician, _event_path(trial), "review", username=trial.colleague.username
    )

    assert response.status_code == 403, response.text
    assert _signature_count(db) == 0
    [refused] = _audit(db, "adverse_events", trial.event.id)[-1:]
    assert refused.action == "signature_refused"
    assert refused.reason == "re-authentication failed: the username is not the signer's own"
    assert "colleague" not in str(refused.after)
    db.refresh(trial.colleague.user)
    assert trial.colleague.user.failed_login_count == 0


def test_repeated_wrong_passwords_lock_signing_even_with_the_right_one(client, db, trial):
    for _ in range(get_settings().login_max_failures):
        response = _sign(client, trial.clinician, _event_path(trial), "review", password="guess!")
        assert response.status_code == 401, response.text

    locked = _sign(client, trial.clinician, _event_path(trial), "review")

    assert locked.status_code == 429, locked.text
    assert "locked" in locked.json()["detail"]
    assert _signature_count(db) == 0
    assert _audit(db, "adverse_events", trial.event.id)[-1].reason == (
        "re-authentication failed: the account is locked"
    )


# --- who signs what -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "path", "meaning", "status"),
    [
        ("therapist", _event_path, "review", 403),
        ("therapist", _session_path, "approval", 403),
        ("coordinator", _event_path, "review", 403),
        ("coordinator", _note_path, "authorship", 403),
        ("coordinator", _session_path, "approval", 403),
        ("co_therapist", _note_path, "authorship", 403),  # not the author
        ("clinician", _note_path, "authorship", 403),  # not the author either
        ("therapist", _note_path, "review", 422),
        ("clinician", _event_path, "authorship", 422),
        ("clinician", _session_path, "review", 422),
    ],
)
def test_who_may_sign_what_and_with_which_meaning(client, db, trial, who, path, meaning, status):
    response = _sign(client, getattr(trial, who), path(trial), meaning)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert _signature_count(db) == 0


def test_a_refusal_to_sign_reads_as_english(client, db, trial):
    refused = _sign(client, trial.therapist, _event_path(trial), "review")
    assert refused.json()["detail"] == "a therapist may not sign an adverse event"
    wrong = _sign(client, trial.clinician, _event_path(trial), "authorship")
    assert wrong.json()["detail"] == (
        "meaning: a clinician signs an adverse event as approval or review, not authorship"
    )


def test_a_record_outside_the_callers_sites_is_not_found(client, db, trial):
    assert _sign(client, trial.away, _event_path(trial), "review").status_code == 404
    assert _sign(client, trial.away, _session_path(trial), "approval").status_code == 404
    missing = f"adverse-events/{trial.participant.id}"  # an id, but no adverse event's
    assert _sign(client, trial.clinician, missing, "review").status_code == 404
    assert _signature_count(db) == 0


def test_a_record_entered_in_error_cannot_be_signed(client, db, trial):
    marked = client.post(
        f"{API}/{_event_path(trial)}/entered-in-error",
        json={"reason": "recorded for the wrong participant"},
        headers=trial.clinician.headers,
    )
    assert marked.status_code == 200, marked.text

    response = _sign(client, trial.clinician, _event_path(trial), "review")

    assert response.status_code == 409, response.text
    assert _signature_count(db) == 0


def test_the_same_signer_cannot_give_the_same_meaning_twice(client, db, trial):
    _signed(client, trial.clinician, _event_path(trial), "review")

    again = _sign(client, trial.clinician, _event_path(trial), "review")

    assert again.status_code == 409, again.text
    _signed(client, trial.clinician, _event_path(trial), "approval")
    _signed(client, trial.colleague, _event_path(trial), "review")
    assert _signature_count(db) == 3


# --- voiding ------------------------------------------------------------------------------------


def test_coding_a_signed_adverse_event_in_meddra_leaves_its_signature_valid(client, db, trial):
    """The coder's classification is not what the investigator signed (app/audit/signed_records)."""
    signature = _signed(client, trial.clinician, _event_path(trial), "approval")
    monitor = create_user(
        db, username="monitor", display_name="Dr Monitor", role=Role.MEDICAL_MONITOR,
        password=PASSWORD,
    )  # fmt: skip
    _, token = tokens.issue(db, monitor, tokens.TokenKind.API)
    headers = {"Authorization": f"Bearer {token}"}
    term = {"term": "Headache", "code": "10019211"}
    coded = client.put(
        f"{API}/{_event_path(trial)}/coding",
        json={
            "meddra_version": "27.1",
            "llt": term,
            "pt": term,
            "hlt": {"term": "Headaches NEC", "code": "10019233"},
            "hlgt": {"term": "Headaches", "code": "10019231"},
            "soc": {"term": "Nervous system disorders", "code": "10029205"},
            "reason": "Coded against MedDRA 27.1",
        },
        headers=headers,
    )
    assert coded.status_code == 200, coded.text
    [still] = coded.json()["signatures"]
    assert still["id"] == signature["id"]
    assert still["status"] == "valid" and still["valid_for_current_version"] is True
    assert coded.json()["coding"]["pt"]["code"] == "10019211"


def test_correcting_a_signed_adverse_event_voids_its_signature_visibly(client, db, trial):
    signature = _signed(client, trial.clinician, _event_path(trial), "approval")

    corrected = client.patch(
        f"{API}/{_event_path(trial)}",
        json={"severity": "severe", "reason": "worse than first reported"},
        headers=trial.clinician.headers,
    )

    assert corrected.status_code == 200, corrected.text
    for shown in (corrected.json(), _read(client, trial.clinician, _event_path(trial))):
        assert shown["severity"] == "severe"  # the record stays readable
        [voided] = shown["signatures"]
        assert voided["id"] == signature["id"]
        assert voided["status"] == "voided"
        assert voided["void_reason"] == "record changed after signing: severity"
        assert _utc(voided["voided_at"]) >= _utc(voided["signed_at"])
        assert voided["valid_for_current_version"] is False
        assert voided["printed_name"] == "Dr Clinician"  # still shows who signed what, when

    # the trail has the change and the voiding, written by the same request
    change = _audit(db, "adverse_events", trial.event.id)[-1]
    assert (change.action, change.after) == ("correct", {"severity": "severe"})
    voiding = _audit(db, "signatures", signature["id"])[-1]
    assert voiding.before["status"] == "valid"
    assert voiding.after["status"] == "voided"
    assert voiding.after["void_reason"] == "record changed after signing: severity"
    assert voiding.reason == "worse than first reported"
    assert voiding.request_id == change.request_id

    # the corrected version can be signed again
    again = _signed(client, trial.clinician, _event_path(trial), "approval")
    shown = _read(client, trial.clinician, _event_path(trial))["signatures"]
    assert [(s["id"], s["status"]) for s in shown] == [
        (signature["id"], "voided"),
        (again["id"], "valid"),
    ]
    assert again["record_hash"] != signature["record_hash"]
    assert shown[1]["valid_for_current_version"] is True


def test_correcting_a_signed_note_voids_its_signature_visibly(client, db, trial):
    signature = _signed(client, trial.therapist, _note_path(trial), "authorship")

    corrected = client.patch(
        f"{API}/{_note_path(trial)}",
        json={"text": "Participant calm; spoke about her brother.", "reason": "wording"},
        headers=trial.therapist.headers,
    )

    assert corrected.status_code == 200, corrected.text
    [voided] = _read(client, trial.therapist, _note_path(trial))["signatures"]
    assert voided["id"] == signature["id"]
    assert voided["status"] == "voided"
    assert voided["void_reason"] == "record changed after signing: text"
    assert voided["valid_for_current_version"] is False
    assert _audit(db, "signatures", signature["id"])[-1].after["status"] == "voided"


def test_marking_a_signed_record_entered_in_error_voids_the_signature(client, db, trial):
    signature = _signed(client, trial.clinician, _event_path(trial), "review")

    marked = client.post(
        f"{API}/{_event_path(trial)}/entered-in-error",
        json={"reason": "recorded for the wrong participant"},
        headers=trial.clinician.headers,
    )

    assert marked.status_code == 200, marked.text
    [voided] = marked.json()["signatures"]
    assert voided["id"] == signature["id"]
    assert voided["status"] == "voided"
    assert voided["void_reason"] == "record changed after signing: error_reason, record_status"


def test_any_change_to_a_closed_out_dosing_session_voids_its_signature(client, db, trial):
    signature = _signed(client, trial.clinician, _session_path(trial), "approval")
    dosing_session = db.get(DosingSession, trial.dosing_session.id)
    with change_reason(db, "attestation note completed"):
        dosing_session.baseline_attestation_note = "BP 128/82, HR 84 at 16:10"

    [voided] = _read(client, trial.clinician, _session_path(trial))["signatures"]
    assert voided["id"] == signature["id"]
    assert voided["status"] == "voided"
    assert voided["void_reason"] == "record changed after signing: baseline_attestation_note"
    voiding = _audit(db, "signatures", signature["id"])[-1]
    assert (voiding.after["status"], voiding.reason) == ("voided", "attestation note completed")


def test_a_change_that_changes_nothing_signed_leaves_the_signature_valid(client, db, trial):
    signature = _signed(client, trial.clinician, _event_path(trial), "review")
    event = db.get(AdverseEvent, trial.event.id)
    event.severity = event.severity  # set, but not changed
    db.flush()

    [shown] = _read(client, trial.clinician, _event_path(trial))["signatures"]
    assert shown["id"] == signature["id"]
    assert shown["status"] == "valid"
    assert shown["valid_for_current_version"] is True


# --- binding to the record (11.70) --------------------------------------------------------------


def test_a_record_changed_behind_vigils_back_no_longer_verifies(client, db, trial):
    _signed(client, trial.clinician, _event_path(trial), "review")
    # a bulk UPDATE skips the unit of work, hence the voiding: verification still catches it
    db.execute(
        update(AdverseEvent).where(AdverseEvent.id == trial.event.id).values(severity="severe")
    )
    db.expire_all()

    [shown] = _read(client, trial.clinician, _event_path(trial))["signatures"]
    assert shown["status"] == "valid"
    assert shown["valid_for_current_version"] is False


def test_a_signature_copied_to_another_record_does_not_verify(client, db, trial):
    signature = _signed(client, trial.therapist, _note_path(trial), "authorship")
    copied = db.get(Signature, uuid.UUID(signature["id"]))
    note = db.get(TherapistNote, trial.note.id)
    event = db.get(AdverseEvent, trial.event.id)

    assert signed_records.verify(copied, note)
    assert not signed_records.verify(copied, event)
    forged = Signature(
        entity_type="adverse_events",
        entity_id=event.id,
        signer_id=copied.signer_id,
        printed_name=copied.printed_name,
        meaning="review",
        signed_at=copied.signed_at,
        record_hash=copied.record_hash,
        status="valid",
    )
    db.add(forged)
    db.flush()

    [shown] = _read(client, trial.clinician, _event_path(trial))["signatures"]
    assert shown["id"] == str(forged.id)
    assert shown["valid_for_current_version"] is False
