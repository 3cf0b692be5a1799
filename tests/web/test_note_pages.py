"""The note pages: the form writes a note with the API's service (the caller its author, the
time in the site's clock), the note's page shows it with its signatures, and its sign form
signs with the API's signing service, sharing the adverse event's sign form."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.models import AuditRecord, Signature, TherapistNote
from app.permissions import Role
from tests.web.people import TEST_PASSWORD, form_token, person, signed_in


@pytest.fixture
def therapist(db, two_sites):
    return person(db, "tess", Role.THERAPIST, two_sites.a.site)


@pytest.fixture
def browser(anonymous_client, therapist):
    return signed_in(anonymous_client, therapist)


def new_url(participant) -> str:
    return f"/participants/{participant.id}/notes/new"


def post_note(browser, participant, **fields):
    token = form_token(browser, new_url(participant))
    return browser.post(new_url(participant), data={"csrf_token": token, **fields})


def notes_of(db, participant) -> list[TherapistNote]:
    db.expire_all()
    stmt = select(TherapistNote).where(TherapistNote.participant_id == participant.id)
    return list(db.scalars(stmt.order_by(TherapistNote.created_at)))


def signatures_of(db, note) -> list[Signature]:
    db.expire_all()
    return list(db.scalars(select(Signature).where(Signature.entity_id == note.id)))


def sign(browser, note, **fields):
    url = f"/notes/{note.id}"
    token = form_token(browser, url)
    return browser.post(f"{url}/signatures", data={"csrf_token": token, **fields})


def test_a_note_is_written_by_the_caller_in_site_time(browser, db, two_sites, therapist):
    site, participant = two_sites.a.site, two_sites.a.participant
    site.timezone = "America/Denver"
    db.flush()
    form = browser.get(new_url(participant))
    assert form.status_code == 200
    assert 'name="written_at" type="datetime-local" value="' in form.text
    answer = post_note(
        browser,
        participant,
        text="Grounding used once; calm at close.",
        written_at="2026-02-02T15:30",
        dosing_session_id=str(two_sites.a.dosing_session.id),
    )
    assert answer.status_code == 303, answer.text
    note = notes_of(db, participant)[-1]
    assert answer.headers["location"] == f"/notes/{note.id}"
    assert note.author_id == therapist.id
    assert note.written_at.astimezone(UTC) == datetime(2026, 2, 2, 22, 30, tzinfo=UTC)
    page = browser.get(answer.headers["location"])
    assert "Grounding used once" in page.text
    assert "2 Feb 2026 15:30 MST" in page.text and "by Tess" in page.text
    assert 'value="authorship" checked' in page.text  # a therapist's one meaning


def test_refusals_are_shown_at_their_fields(browser, db, two_sites):
    participant = two_sites.a.participant
    empty = post_note(browser, participant, text="  ", written_at="2026-02-02T15:30")
    assert empty.status_code == 422
    assert 'id="text-error"' in empty.text
    early = post_note(browser, participant, text="Before consent", written_at="2025-01-01T09:00")
    assert early.status_code == 422
    assert 'id="written_at-error"' in early.text
    assert "Before consent" in early.text  # what was typed is kept
    assert notes_of(db, participant) == [two_sites.a.note]


def test_another_sites_participant_and_note_are_not_found(browser, db, two_sites):
    b = two_sites.b
    assert browser.get(new_url(b.participant)).status_code == 404
    token = form_token(browser, new_url(two_sites.a.participant))
    refused = browser.post(
        new_url(b.participant),
        data={"csrf_token": token, "text": "x", "written_at": "2026-02-02T15:30"},
    )
    assert refused.status_code == 404
    assert notes_of(db, b.participant) == [b.note]
    page = browser.get(f"/notes/{b.note.id}")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text


def test_a_post_without_the_form_token_is_refused(browser, db, two_sites):
    answer = browser.post(
        new_url(two_sites.a.participant), data={"text": "x", "written_at": "2026-02-02T15:30"}
    )
    assert answer.status_code == 403
    assert notes_of(db, two_sites.a.participant) == [two_sites.a.note]


def test_a_wrong_password_signs_nothing_and_the_right_one_signs(browser, db, two_sites):
    mine = post_note(
        browser, two_sites.a.participant, text="Mine to sign", written_at="2026-02-02T15:30"
    )
    note = notes_of(db, two_sites.a.participant)[-1]
    assert mine.headers["location"] == f"/notes/{note.id}"
    wrong = sign(browser, note, meaning="authorship", username="tess", password="not it")
    assert wrong.status_code == 401
    assert "the password is wrong; you did not sign" in wrong.text
    assert signatures_of(db, note) == []
    assert db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(note.id), AuditRecord.action == "signature_refused"
        )
    ).one()
    right = sign(browser, note, meaning="authorship", username="tess", password=TEST_PASSWORD)
    assert right.status_code == 303, right.text
    [signature] = signatures_of(db, note)
    assert signature.meaning == "authorship" and signature.status == "valid"
    assert db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_type == "signatures", AuditRecord.entity_id == str(signature.id)
        )
    ).one()
    page = browser.get(right.headers["location"])
    assert "Signed." in page.text and "Tess" in page.text
    assert 'name="password"' not in page.text  # nothing left for a therapist to sign it as
    token = form_token(browser, f"/notes/{note.id}")
    again = browser.post(
        f"/notes/{note.id}/signatures",
        data={"csrf_token": token, "meaning": "authorship", "username": "tess", "password": "x"},
    )
    assert again.status_code == 401  # the password is checked first, and the refusal shown
    assert "Not signed: the password is wrong" in again.text
    assert db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(note.id), AuditRecord.action == "signature_refused"
        )
    ).all()[1:]  # that attempt audited too
    assert len(signatures_of(db, note)) == 1


def test_only_the_author_signs_as_authorship(browser, db, two_sites):
    note = two_sites.a.note  # written by another therapist of the site
    answer = sign(browser, note, meaning="authorship", username="tess", password=TEST_PASSWORD)
    assert answer.status_code == 403
    assert "only the author" in answer.text
    assert signatures_of(db, note) == []


def test_signing_without_the_form_token_is_refused(browser, db, two_sites):
    note = two_sites.a.note
    answer = browser.post(
        f"/notes/{note.id}/signatures",
        data={"meaning": "authorship", "username": "tess", "password": TEST_PASSWORD},
    )
    assert answer.status_code == 403
    assert signatures_of(db, note) == []


def test_a_clinician_may_sign_a_note_as_review(anonymous_client, db, two_sites):
    clinician = person(db, "lena", Role.CLINICIAN, two_sites.a.site)
    client = signed_in(anonymous_client, clinician)
    note = two_sites.a.note
    page = client.get(f"/notes/{note.id}")
    assert 'value="review"' in page.text and 'value="authorship"' in page.text
    answer = sign(client, note, meaning="review", username="lena", password=TEST_PASSWORD)
    assert answer.status_code == 303
    assert [s.meaning for s in signatures_of(db, note)] == ["review"]


def test_a_coordinator_may_not_read_notes(anonymous_client, db, two_sites):
    coordinator = person(db, "casey", Role.COORDINATOR, two_sites.a.site)
    client = signed_in(anonymous_client, coordinator)
    assert client.get(f"/notes/{two_sites.a.note.id}").status_code == 403
    assert client.get(new_url(two_sites.a.participant)).status_code == 403
