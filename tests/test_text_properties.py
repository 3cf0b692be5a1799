"""Arbitrary text in every text field of the main write routes (control characters, NUL, lone
surrogates, very long strings): the answer is never a 500, and what was answered 2xx is stored
as sent (with the surrounding whitespace stripped where the field says so), on both databases."""

import json
import operator
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from app.models import (
    AdverseEvent,
    Assessment,
    AuditRecord,
    Dose,
    TherapistNote,
    User,
    VitalReading,
)
from tests.conftest import TEST_PASSWORD
from tests.factories.dosing import T0
from tests.vitals.readings import reading

API = "/api/v1"
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates too
TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.text(
        st.sampled_from("\x00\x01\x08\x0b\x1f\t\n\r \xa0\u2028\ud800\udfffé\U0001fac0a"),
        max_size=12,
    ),
    st.builds(
        operator.mul, st.sampled_from(["a", "é", " ", "\x00", "\U0001fac0"]), st.integers(0, 25_000)
    ),
)
URL_TEXT = st.text(
    st.characters(exclude_categories=("Cs",)), max_size=40
)  # a URL holds no surrogate


def _send(client, method: str, url: str, body: Any):
    """As JSON text with escapes (the only way to carry a lone surrogate)."""
    return client.request(
        method,
        f"{API}{url}",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )


def _said(text: str) -> str:
    """What the JSON text sent for ``text`` says: two lone surrogates that make a pair are
    written as two escapes, which JSON reads as the one character they encode."""
    return json.loads(json.dumps(text))


def _answered(response) -> bool:
    """Whether it was a 2xx; never a 500."""
    assert response.status_code < 500, response.text
    return response.is_success


@pytest.fixture
def a(two_sites):
    return two_sites.a


@EXAMPLES
@given(source=TEXT)
def test_a_single_reading_source(client, db, a, source):
    sent = reading(source=source)
    if _answered(
        _send(client, "POST", f"/dosing-sessions/{a.dosing_session.id}/vital-readings", sent)
    ):
        stored = select(VitalReading.source).where(VitalReading.id == uuid.UUID(sent["id"]))
        assert db.scalar(stored) == _said(source)


@EXAMPLES
@given(source=TEXT)
def test_a_batch_reading_source_costs_no_other_reading(client, db, a, source):
    odd, plain = reading(minutes=61, source=source), reading(minutes=62)
    url = f"/dosing-sessions/{a.dosing_session.id}/vital-readings/batch"
    response = _send(client, "POST", url, {"readings": [odd, plain]})
    assert _answered(response)
    first, second = response.json()["results"]
    assert second["status"] == "accepted"
    stored = select(VitalReading.source).where(VitalReading.id == uuid.UUID(odd["id"]))
    if first["status"] == "accepted":
        assert db.scalar(stored) == _said(source)
    else:
        assert first["problem"]["errors"] and db.scalar(stored) is None


@EXAMPLES
@given(text=TEXT)
def test_a_new_note(client, db, a, text):
    body = {"text": text, "written_at": "2026-02-02T17:00:00Z", "author_id": str(a.therapist.id)}
    response = _send(client, "POST", f"/participants/{a.participant.id}/notes", body)
    if _answered(response):
        stored = select(TherapistNote.text).where(
            TherapistNote.id == uuid.UUID(response.json()["id"])
        )
        assert db.scalar(stored) == _said(text).strip()


@EXAMPLES
@given(text=TEXT, reason=TEXT)
def test_a_corrected_note(client, db, a, text, reason):
    response = _send(client, "PATCH", f"/notes/{a.note.id}", {"text": text, "reason": reason})
    if _answered(response):
        assert (
            db.scalar(select(TherapistNote.text).where(TherapistNote.id == a.note.id))
            == _said(text).strip()
        )
        [record] = db.scalars(
            select(AuditRecord)
            .where(AuditRecord.entity_id == str(a.note.id))
            .order_by(AuditRecord.sequence.desc())
            .limit(1)
        )
        assert record.reason == _said(reason).strip()


def _event(verbatim_term: str) -> dict[str, Any]:
    return {
        "verbatim_term": verbatim_term,
        "onset_at": (T0 + timedelta(hours=1)).isoformat(),
        "severity": "mild",
        "relatedness": "possible",
        "expectedness": "expected",
        "action_taken": "not_applicable",
        "outcome": "recovering",
    }


@EXAMPLES
@given(term=TEXT)
def test_a_new_adverse_event(client, db, a, term):
    response = _send(
        client, "POST", f"/participants/{a.participant.id}/adverse-events", _event(term)
    )
    if _answered(response):
        stored = select(AdverseEvent.verbatim_term).where(
            AdverseEvent.id == uuid.UUID(response.json()["id"])
        )
        assert db.scalar(stored) == _said(term).strip()


@EXAMPLES
@given(term=TEXT)
def test_a_corrected_adverse_event(client, db, a, term):
    body = {"verbatim_term": term, "reason": "coded term corrected"}
    if _answered(_send(client, "PATCH", f"/adverse-events/{a.adverse_event.id}", body)):
        stored = select(AdverseEvent.verbatim_term).where(AdverseEvent.id == a.adverse_event.id)
        assert db.scalar(stored) == _said(term).strip()


ENTERED_IN_ERROR = {
    "vital reading": (VitalReading, "/vital-readings/{}", "reading"),
    "note": (TherapistNote, "/notes/{}", "note"),
    "adverse event": (AdverseEvent, "/adverse-events/{}", "adverse_event"),
    "dose": (Dose, "/doses/{}", "dose"),
    "assessment": (Assessment, "/assessments/{}", "assessment"),
}


@pytest.mark.parametrize("kind", list(ENTERED_IN_ERROR))
def test_an_entered_in_error_reason(client, db, a, kind):
    model, path, attribute = ENTERED_IN_ERROR[kind]
    record_id = getattr(a, attribute).id

    @EXAMPLES
    @given(reason=TEXT)
    def mark(reason: str) -> None:
        response = _send(
            client, "POST", path.format(record_id) + "/entered-in-error", {"reason": reason}
        )
        if _answered(response):
            assert (
                db.scalar(select(model.error_reason).where(model.id == record_id))
                == _said(reason).strip()
            )
            # valid again for the next example (test setup, outside the API)
            db.execute(
                update(model)
                .where(model.id == record_id)
                .values(record_status="valid", error_reason=None)
            )

    mark()


@EXAMPLES
@given(username=TEXT, password=TEXT)
def test_a_sign_in(anonymous_client, db, username, password):
    response = _send(
        anonymous_client, "POST", "/auth/login", {"username": username, "password": password}
    )
    assert response.status_code < 500, response.text
    if response.status_code == 401:  # audited with the username as sent
        [record] = db.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "login_failed")
            .order_by(AuditRecord.sequence.desc())
            .limit(1)
        )
        assert record.after["username"] == _said(username)


@EXAMPLES
@given(password=TEXT)
def test_a_sign_in_of_a_real_user(anonymous_client, db, client, password):
    response = _send(
        anonymous_client, "POST", "/auth/login", {"username": "tester", "password": password}
    )
    assert response.status_code < 500, response.text
    assert response.status_code != 200 or password == TEST_PASSWORD
    db.execute(
        update(User)
        .where(User.username == "tester")
        .values(failed_login_count=0, locked_until=None)
    )


@EXAMPLES
@given(actor=URL_TEXT)
def test_the_actor_filter_of_the_audit_trail(client, actor):
    response = client.get(f"{API}/audit-records", params={"actor": actor})
    if _answered(response) and actor:  # an empty actor is no filter
        assert all(item["actor"] == actor for item in response.json()["items"])
