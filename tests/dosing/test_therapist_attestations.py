"""Each therapist of the pair attests their own presence, signing in again, or a clinician
attests for them with a reason; the initial dose waits for both."""

from sqlalchemy import select

from app.models import AuditRecord
from tests.conftest import TEST_PASSWORD
from tests.dosing.api import at, create_session, give

API = "/api/v1"


def _attest(client, sid, position, minutes, **proof):
    return client.post(
        f"{API}/dosing-sessions/{sid}/therapist-attestations",
        json={"position": position, "present_at": at(minutes), **proof},
    )


def _own(client, password=TEST_PASSWORD, username=None):
    return {"username": username or client.user.username, "password": password}


def _started(clinician, participant):
    sid = create_session(clinician, participant.id)["id"]
    started = clinician.post(f"{API}/dosing-sessions/{sid}/start", json={"started_at": at(0)})
    assert started.status_code == 200, started.text
    return sid


def test_each_therapist_attests_or_a_clinician_attests_for_them(client_as, db, site, participant):
    clinician = client_as("clinician", [site])
    lead = client_as("therapist", [site])
    co = client_as("therapist", [site])
    sid = _started(clinician, participant)

    own = _attest(lead, sid, "lead", -5, **_own(lead))
    assert own.status_code == 200, own.text
    assert own.json()["therapists"] is None  # one of the two
    half = give(clinician, sid, "initial", 80, 10)
    assert half.status_code == 422
    assert "two therapists present" in half.json()["detail"]

    reason = "co-therapist's tablet session expired; I saw her in the room"
    for_co = _attest(clinician, sid, "co", -2, therapist_id=str(co.user.id), reason=reason)
    assert for_co.status_code == 200, for_co.text
    pair = for_co.json()["therapists"]
    assert pair["lead_therapist_id"] == str(lead.user.id)
    assert pair["co_therapist_id"] == str(co.user.id)
    assert pair["present_at"].startswith(at(-2)[:19])
    assert give(clinician, sid, "initial", 80, 10).status_code == 201

    reasons = db.scalars(
        select(AuditRecord.reason).where(
            AuditRecord.entity_type == "dosing_sessions",
            AuditRecord.entity_id == sid,
            AuditRecord.action == "attest_presence",
        )
    ).all()
    assert any("attested their own presence (re-authenticated)" in r for r in reasons)
    assert any(reason in r for r in reasons)


def test_a_therapist_must_sign_in_again_as_themselves(client_as, db, site, participant):
    clinician = client_as("clinician", [site])
    lead = client_as("therapist", [site])
    other = client_as("therapist", [site])
    sid = _started(clinician, participant)

    wrong = _attest(lead, sid, "lead", -5, **_own(lead, password="not my password at all"))
    assert wrong.status_code == 401
    assert wrong.json()["title"] == "Re-authentication failed"
    refused = db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == sid, AuditRecord.action == "attestation_refused"
        )
    ).all()
    assert [r.reason for r in refused] == ["re-authentication failed: wrong password"]

    someone_else = _attest(lead, sid, "lead", -5, **_own(lead, username=other.user.username))
    assert someone_else.status_code == 403
    assert (
        client_as("clinician", [site]).get(f"{API}/dosing-sessions/{sid}").json()["therapists"]
        is None
    )


def test_who_may_attest_for_whom(client_as, site, participant):
    clinician = client_as("clinician", [site])
    lead = client_as("therapist", [site])
    co = client_as("therapist", [site])
    sid = _started(clinician, participant)

    for_a_colleague = _attest(lead, sid, "co", -5, therapist_id=str(co.user.id), reason="here")
    assert for_a_colleague.status_code == 422
    assert for_a_colleague.json()["errors"][0]["field"] == "therapist_id"
    assert "only a clinician attests for a therapist" in for_a_colleague.json()["detail"]

    no_reason = _attest(clinician, sid, "co", -5, therapist_id=str(co.user.id))
    assert no_reason.status_code == 422
    assert "therapist_id and reason" in no_reason.text

    not_a_therapist = _attest(
        clinician, sid, "co", -5, therapist_id=str(clinician.user.id), reason="covering"
    )
    assert not_a_therapist.status_code == 422
    assert "not a therapist" in not_a_therapist.json()["detail"]

    assert _attest(lead, sid, "lead", -5, **_own(lead)).status_code == 200
    twice = _attest(clinician, sid, "co", -5, therapist_id=str(lead.user.id), reason="covering")
    assert twice.status_code == 422
    assert "two different people" in twice.json()["detail"]


def test_the_pair_at_once_is_a_clinicians_attestation_with_a_reason(client_as, site, participant):
    clinician = client_as("clinician", [site])
    lead = client_as("therapist", [site])
    co = client_as("therapist", [site])
    sid = _started(clinician, participant)
    body = {
        "lead_therapist_id": str(lead.user.id),
        "co_therapist_id": str(co.user.id),
        "present_at": at(-5),
    }
    url = f"{API}/dosing-sessions/{sid}/therapist-presence"
    assert lead.post(url, json={**body, "reason": "we are both here"}).status_code == 403
    no_reason = clinician.post(url, json=body)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    pair = clinician.post(url, json={**body, "reason": "both in the room; tablets offline"})
    assert pair.status_code == 200, pair.text
    assert pair.json()["therapists"]["co_therapist_id"] == str(co.user.id)
    assert give(clinician, sid, "initial", 80, 10).status_code == 201
