"""Alerts through the API: opened by the service (as the rules engine will), acted on over HTTP."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.alerts import service as alerts
from app.models import Alert, AuditRecord
from app.permissions import Role
from tests.conftest import T0
from tests.factories.alerts import make_alert

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _audit(db, alert_id):
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == "alerts", AuditRecord.entity_id == str(alert_id)
    )
    return db.scalars(stmt.order_by(AuditRecord.sequence)).all()


@pytest.fixture
def clinician(client_as, two_sites):
    return client_as(Role.CLINICIAN, sites=[two_sites.a.site])


def test_a_new_finding_opens_an_alert_with_the_protocols_deadline(db, client, two_sites):
    found_at = T0 + timedelta(minutes=90)
    alert, created = make_alert(
        db, two_sites.a.dosing_session, found_at=found_at, rule_id="tachycardia-news2-3"
    )
    assert created
    body = client.get(f"/api/v1/alerts/{alert.id}").json()
    assert body["status"] == "open"
    assert body["severity"] == "critical"
    assert body["occurrences"] == 1
    assert body["escalation_level"] == 0
    assert body["site_id"] == str(two_sites.a.site.id)
    # the MDMA protocol: critical alerts are acknowledged within 10 minutes
    assert datetime.fromisoformat(body["acknowledge_by"]) == found_at + timedelta(minutes=10)
    assert [r.action for r in _audit(db, alert.id)] == ["create"]


def test_a_repeated_finding_updates_the_open_alert_and_severity_only_rises(db, client, two_sites):
    session = two_sites.a.dosing_session
    first, created = make_alert(
        db, session, found_at=T0, rule_id="fever-grade-1", severity="warning", systolic=1
    )
    assert created
    again, created = make_alert(
        db,
        session,
        found_at=T0 + timedelta(minutes=5),
        rule_id="fever-grade-1",
        severity="critical",
        systolic=2,
    )
    assert not created and again.id == first.id
    _, created = make_alert(
        db,
        session,
        found_at=T0 + timedelta(minutes=10),
        rule_id="fever-grade-1",
        severity="info",
        systolic=3,
    )
    assert not created
    page = client.get(
        "/api/v1/alerts", params={"dosing_session_id": str(session.id), "severity": "critical"}
    ).json()
    fever = [item for item in page["items"] if item["rule_id"] == "fever-grade-1"]
    assert len(fever) == 1
    (body,) = fever
    assert body["occurrences"] == 3
    assert body["severity"] == "critical"  # never lowered by the later info finding
    # the first occurrence at the alert's severity, not the later info one
    assert body["finding"]["observed"] == {"SYSBP": 2}
    assert datetime.fromisoformat(body["first_found_at"]) == T0
    assert datetime.fromisoformat(body["severity_since"]) == T0 + timedelta(minutes=5)
    assert datetime.fromisoformat(body["last_found_at"]) == T0 + timedelta(minutes=10)
    # raised to critical: the critical deadline from the finding that raised it
    assert datetime.fromisoformat(body["acknowledge_by"]) == T0 + timedelta(minutes=15)
    assert [r.action for r in _audit(db, first.id)] == ["create", "update", "update"]


def test_the_database_refuses_a_second_unresolved_alert_for_one_key(db, two_sites):
    alert = two_sites.a.alert
    duplicate = Alert(
        **{
            c.key: getattr(alert, c.key)
            for c in Alert.__table__.columns
            if c.key not in {"id", "created_at", "updated_at"}
        }
    )
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(duplicate)
        db.flush()


def test_after_resolution_the_same_finding_opens_a_new_alert(db, two_sites):
    alert = two_sites.a.alert
    alerts.resolve(db, alert, two_sites.a.therapist.id, "BP controlled with labetalol")
    again, created = make_alert(db, two_sites.a.dosing_session, found_at=T0 + timedelta(hours=3))
    assert created and again.id != alert.id


def test_acknowledge_records_who_when_and_note_and_only_once(db, clinician, two_sites, monkeypatch):
    monkeypatch.setattr(clock, "utcnow", lambda: NOON)
    alert = two_sites.a.alert
    response = clinician.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "At the bedside, rechecking BP"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by_id"] == str(clinician.user.id)
    assert datetime.fromisoformat(body["acknowledged_at"]) == NOON
    assert body["acknowledgement_note"] == "At the bedside, rechecking BP"

    again = clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "again"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "acknowledged" in again.json()["detail"]

    (record,) = [r for r in _audit(db, alert.id) if r.action == "acknowledge"]
    assert record.actor == f"clinician:{clinician.user.username}"
    assert record.reason == "At the bedside, rechecking BP"
    assert record.after["status"] == "acknowledged"


def test_resolve_needs_a_resolution_and_records_who_when_how(db, clinician, two_sites, monkeypatch):
    monkeypatch.setattr(clock, "utcnow", lambda: NOON)
    alert = two_sites.a.alert
    url = f"/api/v1/alerts/{alert.id}/resolve"
    assert clinician.post(url, json={}).status_code == 422
    assert clinician.post(url, json={"resolution": "   "}).status_code == 422
    assert db.get(Alert, alert.id).status == "open"

    response = clinician.post(url, json={"resolution": "BP 150/90 on recheck; observed"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolved_by_id"] == str(clinician.user.id)
    assert datetime.fromisoformat(body["resolved_at"]) == NOON
    assert body["resolution"] == "BP 150/90 on recheck; observed"

    again = clinician.post(url, json={"resolution": "again"})
    assert again.status_code == 409
    assert clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={}).status_code == 409
    (record,) = [r for r in _audit(db, alert.id) if r.action == "resolve"]
    assert record.reason == "BP 150/90 on recheck; observed"


def test_an_acknowledged_alert_is_resolved_and_the_list_filters_by_status(db, clinician, two_sites):
    alert = two_sites.a.alert
    assert clinician.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={}).status_code == 200
    listed = clinician.get("/api/v1/alerts", params={"status": "acknowledged"}).json()
    assert [item["id"] for item in listed["items"]] == [str(alert.id)]
    resolved = clinician.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"resolution": "Settled after rest"}
    )
    assert resolved.status_code == 200
    assert clinician.get("/api/v1/alerts", params={"status": "open"}).json()["items"] == []
    actions = [r.action for r in _audit(db, alert.id)]
    assert actions == ["create", "acknowledge", "resolve"]


def test_a_therapist_reads_alerts_but_cannot_acknowledge(client_as, two_sites):
    therapist = client_as(Role.THERAPIST, sites=[two_sites.a.site])
    alert = two_sites.a.alert
    assert therapist.get(f"/api/v1/alerts/{alert.id}").status_code == 200
    response = therapist.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "seen"})
    assert response.status_code == 403


def test_a_clinician_of_another_site_neither_sees_nor_acts_on_the_alert(client_as, two_sites):
    site_b = client_as(Role.CLINICIAN, sites=[two_sites.b.site])
    alert = two_sites.a.alert
    assert site_b.get(f"/api/v1/alerts/{alert.id}").status_code == 404
    response = site_b.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "x"})
    assert response.status_code == 404
    listed = site_b.get("/api/v1/alerts").json()["items"]
    assert [item["id"] for item in listed] == [str(two_sites.b.alert.id)]
    by_participant = site_b.get(
        "/api/v1/alerts", params={"participant_id": str(two_sites.a.participant.id)}
    ).json()
    assert by_participant["items"] == []


def test_the_medical_monitor_sees_every_site_and_may_respond(client_as, two_sites):
    monitor = client_as(Role.MEDICAL_MONITOR)
    listed = monitor.get("/api/v1/alerts").json()["items"]
    assert {item["id"] for item in listed} == {
        str(two_sites.a.alert.id),
        str(two_sites.b.alert.id),
    }
    alert = two_sites.b.alert
    response = monitor.post(f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "Called"})
    assert response.status_code == 200


def test_an_unacknowledged_critical_alert_escalates_once_after_its_deadline(
    db, client, two_sites, monkeypatch
):
    found_at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    alert, _ = make_alert(
        db, two_sites.a.dosing_session, found_at=found_at, rule_id="tachycardia-news2-3"
    )
    warning, _ = make_alert(
        db,
        two_sites.a.dosing_session,
        found_at=found_at,
        rule_id="fever-grade-2",
        severity="warning",
    )
    # the seeded alerts (found at T0) are long overdue; keep this test to its own
    for seeded in (two_sites.a.alert, two_sites.b.alert):
        alerts.acknowledge(db, seeded, two_sites.a.therapist.id, None)

    monkeypatch.setattr(clock, "utcnow", lambda: found_at + timedelta(minutes=9))
    assert alerts.escalate_overdue(db, clock.utcnow()) == []

    later = found_at + timedelta(minutes=11)
    monkeypatch.setattr(clock, "utcnow", lambda: later)
    assert alerts.escalate_overdue(db, clock.utcnow()) == [alert]
    assert alerts.escalate_overdue(db, clock.utcnow()) == []  # idempotent

    body = client.get(f"/api/v1/alerts/{alert.id}").json()
    assert body["escalation_level"] == 1
    assert datetime.fromisoformat(body["escalated_at"]) == later
    assert body["status"] == "open"
    assert client.get(f"/api/v1/alerts/{warning.id}").json()["escalation_level"] == 0
    escalations = [r for r in _audit(db, alert.id) if r.action == "escalate"]
    assert len(escalations) == 1
    assert "medical monitor" in escalations[0].reason
    assert escalations[0].after == {"escalation_level": 1, "escalated_at": later.isoformat()}


def test_an_acknowledged_critical_alert_does_not_escalate(db, two_sites, monkeypatch):
    alert = two_sites.a.alert
    alerts.acknowledge(db, alert, two_sites.a.therapist.id, "on it")
    escalated = alerts.escalate_overdue(db, T0 + timedelta(days=1))
    assert alert not in escalated
    assert alert.escalation_level == 0
