"""Emergency unblinding through the API, on both databases: a clinician of the participant's
site, re-authenticated, learns the arm of that participant, and only they do; everybody sees
that the participant was unblinded, by whom and why; the medical monitor and the sponsor get a
critical alert saying so, never the arm; every refusal says why."""

import pytest
from sqlalchemy import select

from app.auth.blinding import MASKED
from app.config import get_settings
from app.models import Alert, AuditRecord
from app.permissions import ALL_SITES_ROLES, Role
from tests.conftest import TEST_PASSWORD
from tests.factories.trial import make_participant

API = "/api/v1"
JUSTIFICATION = "hypertensive crisis not settling; treatment depends on exposure"


def _unblind(clinician, participant, **changes):
    body = {
        "username": clinician.user.username,
        "password": TEST_PASSWORD,
        "reason_code": "medical_emergency",
        "justification": JUSTIFICATION,
        **changes,
    }
    return clinician.post(f"{API}/participants/{participant.id}/unblinding", json=body)


def _audit(db, participant, action):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_id == str(participant.id), AuditRecord.action == action
    )
    return list(db.scalars(stmt.order_by(AuditRecord.sequence)))


def _unblinding_alerts(db, participant):
    stmt = select(Alert).where(Alert.participant_id == participant.id, Alert.kind == "unblinding")
    return list(db.scalars(stmt))


def test_the_clinician_sees_the_arm_and_only_they_do(client_as, db, two_sites):
    a = two_sites.a
    participant = a.participant
    clinician = client_as(Role.CLINICIAN, [a.site])

    response = _unblind(clinician, participant)

    assert response.status_code == 200, response.text
    shown = response.json()
    db.refresh(participant)
    assert shown["arm_code"] == participant.arm_code
    assert shown["unblinded_by_id"] == str(clinician.user.id)
    assert shown["unblinding_reason_code"] == "medical_emergency"
    assert shown["unblinding_justification"] == JUSTIFICATION
    assert shown["unblinded_at"] is not None
    again = clinician.get(f"{API}/participants/{participant.id}").json()
    assert again["arm_code"] == participant.arm_code
    # the other participant of their site stays masked for them
    other = make_participant(db, a.site, "01-002", stage="randomised")
    assert clinician.get(f"{API}/participants/{other.id}").json()["arm_code"] == MASKED
    # everybody else: marked unblinded, the arm masked
    for reader in (
        client_as(Role.CLINICIAN, [a.site]),
        client_as(Role.COORDINATOR, [a.site]),
        client_as(Role.THERAPIST, [a.site]),
        client_as(Role.MEDICAL_MONITOR),
        client_as(Role.SPONSOR),
    ):
        seen = reader.get(f"{API}/participants/{participant.id}").json()
        assert seen["arm_code"] == MASKED, reader.user.role
        assert seen["unblinded_by_id"] == str(clinician.user.id)
        assert seen["unblinding_reason_code"] == "medical_emergency"
        assert seen["unblinding_justification"] == JUSTIFICATION
    listed = client_as(Role.MEDICAL_MONITOR).get(f"{API}/participants").json()["items"]
    assert {p["arm_code"] for p in listed} == {MASKED}
    # the clinician's reads of the arm are audited, never the arm itself
    reads = _audit(db, participant, "read_unblinded")
    assert len(reads) == 2
    assert {r.actor for r in reads} == {f"clinician:{clinician.user.username}"}


def test_the_unblinding_is_audited_and_the_trail_stays_masked(client_as, db, two_sites):
    participant = two_sites.a.participant
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    assert _unblind(clinician, participant).status_code == 200
    db.refresh(participant)

    [record] = _audit(db, participant, "unblind")
    assert record.actor == f"clinician:{clinician.user.username}"
    assert record.reason == f"emergency unblinding (medical_emergency): {JUSTIFICATION}"
    assert record.after["unblinded_by_id"] == str(clinician.user.id)
    assert "arm_code" not in record.after
    for reader in (client_as(Role.MEDICAL_MONITOR), client_as(Role.SPONSOR), clinician):
        history = reader.get(f"{API}/history/participants/{participant.id}")
        assert history.status_code == 200, history.text
        assert "unblind" in [r["action"] for r in history.json()["items"]]
        assert f'"{participant.arm_code}"' not in history.text
    trail = client_as(Role.SPONSOR).get(
        f"{API}/audit-records", params={"entity_type": "participants"}
    )
    assert f'"{participant.arm_code}"' not in trail.text


def test_a_critical_alert_tells_the_monitor_and_sponsor_who_and_why_never_the_arm(
    client_as, db, two_sites
):
    participant = two_sites.a.participant
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    assert _unblind(clinician, participant).status_code == 200
    db.refresh(participant)

    [alert] = _unblinding_alerts(db, participant)
    assert (alert.severity, alert.status, alert.escalation_level) == ("critical", "open", 1)
    for reader in (client_as(Role.MEDICAL_MONITOR), client_as(Role.SPONSOR)):
        response = reader.get(f"{API}/alerts", params={"participant_id": str(participant.id)})
        [seen] = [a for a in response.json()["items"] if a["kind"] == "unblinding"]
        assert seen["severity"] == "critical"
        assert clinician.user.display_name in seen["message"]
        assert "medical_emergency" in seen["message"] and JUSTIFICATION in seen["message"]
        assert participant.arm_code not in response.text
    # the medical monitor acknowledges it like any critical alert
    monitor = client_as(Role.MEDICAL_MONITOR)
    acknowledged = monitor.post(f"{API}/alerts/{alert.id}/acknowledge", json={"note": "called"})
    assert acknowledged.status_code == 200, acknowledged.text


def test_a_wrong_password_is_refused_audited_and_counts_toward_the_lockout(
    client_as, db, two_sites
):
    participant = two_sites.a.participant
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])

    wrong = _unblind(clinician, participant, password="not it at all")

    assert wrong.status_code == 401, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["detail"] == "the password is wrong; you did not unblind"
    db.refresh(participant)
    assert participant.unblinded_at is None and _unblinding_alerts(db, participant) == []
    [refused] = _audit(db, participant, "unblinding_refused")
    assert refused.reason == "re-authentication failed: wrong password"
    assert refused.after == {"reason_code": "medical_emergency"}
    db.refresh(clinician.user)
    assert clinician.user.failed_login_count == 1
    for _ in range(get_settings().login_max_failures - 1):
        assert _unblind(clinician, participant, password="guess!").status_code == 401

    locked = _unblind(clinician, participant)

    assert locked.status_code == 429, locked.text
    assert "locked" in locked.json()["detail"]
    db.refresh(participant)
    assert participant.unblinded_at is None


def test_someone_elses_username_is_refused(client_as, db, two_sites):
    participant = two_sites.a.participant
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    colleague = client_as(Role.CLINICIAN, [two_sites.a.site])

    response = _unblind(clinician, participant, username=colleague.user.username)

    assert response.status_code == 403, response.text
    assert "nobody may unblind for someone else" in response.json()["detail"]
    [refused] = _audit(db, participant, "unblinding_refused")
    assert refused.reason == (
        "re-authentication failed: the username is not the unblinding clinician's own"
    )


def test_a_participant_not_randomised_has_no_arm_to_unblind(client_as, db, two_sites):
    enrolled = make_participant(db, two_sites.a.site, "01-002", stage="enrolled")
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])

    response = _unblind(clinician, enrolled)

    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        "participant 01-002 is enrolled, not randomised: there is no arm to unblind"
    )


def test_a_clinician_of_another_site_cannot_see_the_participant(client_as, db, two_sites):
    clinician_b = client_as(Role.CLINICIAN, [two_sites.b.site])

    response = _unblind(clinician_b, two_sites.a.participant)

    assert response.status_code == 404, response.text
    db.refresh(two_sites.a.participant)
    assert two_sites.a.participant.unblinded_at is None


@pytest.mark.parametrize(
    "role", [Role.COORDINATOR, Role.THERAPIST, Role.MEDICAL_MONITOR, Role.SPONSOR, Role.ADMIN]
)
def test_only_a_clinician_unblinds(client_as, db, two_sites, role):
    caller = client_as(role, [] if role in ALL_SITES_ROLES else [two_sites.a.site])

    response = _unblind(caller, two_sites.a.participant)

    assert response.status_code == 403, response.text
    assert "participant:emergency-unblind" in response.json()["detail"]


def test_a_participant_is_unblinded_once(client_as, db, two_sites):
    participant = two_sites.a.participant
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    assert _unblind(clinician, participant).status_code == 200
    db.refresh(participant)

    # the same clinician again: shown the arm, nothing else changes
    repeated = _unblind(clinician, participant, reason_code="other", justification="again")
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["arm_code"] == participant.arm_code
    assert repeated.json()["unblinding_reason_code"] == "medical_emergency"
    assert len(_unblinding_alerts(db, participant)) == 1
    assert len(_audit(db, participant, "unblind")) == 1
    # another clinician is told who holds the arm
    colleague = client_as(Role.CLINICIAN, [two_sites.a.site], username="dr-other")
    refused = _unblind(colleague, participant)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"by {clinician.user.display_name}, who sees the arm" in detail
    assert participant.arm_code not in detail


def test_a_coded_reason_and_a_justification_are_required(client_as, two_sites):
    clinician = client_as(Role.CLINICIAN, [two_sites.a.site])
    participant = two_sites.a.participant

    unknown = _unblind(clinician, participant, reason_code="curiosity")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "reason_code"
    empty = _unblind(clinician, participant, justification="")
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "justification"
