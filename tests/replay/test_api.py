"""GET /api/v1/dosing-sessions/{id}/replay on both databases: what an amendment would have
raised over a finished session, compared with the version the session ran under."""

import uuid
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Alert, AuditRecord
from app.permissions import Role
from tests.conftest import ClientAs
from tests.factories.trial import PSILOCYBIN, load_protocol
from tests.replay import builders
from tests.replay.builders import AMENDED_LABEL, BOTH_AT, ONLY_AMENDED_AT

PROBLEM = "application/problem+json"


def url(world: SimpleNamespace) -> str:
    return f"/api/v1/dosing-sessions/{world.dosing_session.id}/replay"


@pytest.fixture
def world(db: Session) -> SimpleNamespace:
    return builders.build(db)


def _replay(client: TestClient, world: SimpleNamespace, version_id: object, **params: str):
    return client.get(url(world), params={"protocol_version_id": str(version_id), **params})


def _rule(findings: list[dict], rule_id: str) -> list[dict]:
    return [f for f in findings if f["rule_id"] == rule_id]


def test_the_lowered_threshold_is_a_finding_only_under_the_amendment(
    client: TestClient, world: SimpleNamespace
):
    response = _replay(client, world, world.amended.id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target"] == {
        "id": str(world.amended.id),
        "protocol_id": "mdma-ptsd-phase3",
        "version_label": AMENDED_LABEL,
        "sequence": 2,
        "sha256": world.amended.sha256,
    }
    assert body["baseline"]["id"] == str(world.own.id)
    assert body["baseline"]["version_label"] == "1.4"
    assert body["same_version"] is False

    [extra] = body["comparison"]["only_target"]
    assert extra["rule_id"] == "hypertension-grade-3"
    assert extra["at"] == ONLY_AMENDED_AT.isoformat().replace("+00:00", "Z")
    assert extra["minutes_after_dose"] == 60
    assert extra["severity"] == "critical"
    assert extra["informational"] is False
    assert extra["kind"] == "threshold"
    assert extra["evidence"] == [str(world.readings.only_amended.id)]
    assert "155" in extra["message"] and "150" in extra["message"]
    assert "09:30 (UTC+00:00, T+60 min)" in extra["message"]
    assert body["comparison"]["only_baseline"] == []

    # the SBP 165 reading: raised by both versions, worded with each one's threshold
    [matched] = _rule(body["comparison"]["both"], "hypertension-grade-3")
    assert matched["at"] == BOTH_AT.isoformat().replace("+00:00", "Z")
    assert matched["minutes_after_dose"] == 120
    assert "message" in matched["changed"] and "thresholds" in matched["changed"]
    assert "severity" not in matched["changed"]
    assert "160" in matched["baseline_message"] and "150" in matched["message"]

    # every finding of the target is listed, and the comparison accounts for each of them
    target_keys = {f["occurrence_key"] for f in body["findings"]}
    compared = body["comparison"]["only_target"] + body["comparison"]["both"]
    assert target_keys == {f["occurrence_key"] for f in compared}
    assert body["summary"] == {
        "target_findings": len(body["findings"]),
        "baseline_findings": len(body["findings"]) - 1,
        "only_target": 1,
        "only_baseline": 0,
        "both": len(body["findings"]) - 1,
        "changed": 1,
    }
    assert body["ended_at"] == "2026-02-02T16:00:00Z"
    assert body["initial_dose_at"] == "2026-02-02T08:30:00Z"


def test_the_sessions_own_version_compares_all_both(client: TestClient, world: SimpleNamespace):
    body = _replay(client, world, world.own.id).json()
    assert body["same_version"] is True
    assert body["comparison"]["only_target"] == []
    assert body["comparison"]["only_baseline"] == []
    assert len(body["comparison"]["both"]) == len(body["findings"]) > 0
    assert all(f["changed"] == [] for f in body["comparison"]["both"])
    assert _rule(body["findings"], "hypertension-grade-3")[0]["at"] == "2026-02-02T10:30:00Z"


def test_info_findings_are_marked_and_min_severity_filters(
    client: TestClient, db: Session, world: SimpleNamespace
):
    # a session with no baseline reading: the rise-from-baseline rule says so, as info
    world.readings.baseline.record_status = "entered_in_error"
    db.flush()
    body = _replay(client, world, world.amended.id).json()
    [info] = _rule(body["findings"], "sbp-rise-from-baseline")
    assert info["severity"] == "info" and info["informational"] is True
    assert info["variant"] == "no-baseline"

    filtered = _replay(client, world, world.amended.id, min_severity="warning").json()
    assert filtered["min_severity"] == "warning"
    assert all(f["severity"] != "info" for f in filtered["findings"])
    assert len(filtered["findings"]) == len(body["findings"]) - 1
    assert [f["rule_id"] for f in filtered["comparison"]["only_target"]] == ["hypertension-grade-3"]


def test_an_unfinished_session_is_409(client: TestClient, db: Session):
    world = builders.build(db, ended=False)
    response = _replay(client, world, world.amended.id)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "end the session first" in response.json()["detail"]


def test_a_version_of_another_protocol_is_422(client: TestClient, db: Session, world):
    psilocybin = load_protocol(db, PSILOCYBIN)
    response = _replay(client, world, psilocybin.id)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    detail = response.json()["detail"]
    assert "psilocybin-single-session" in detail and "mdma-ptsd-phase3" in detail


def test_an_unknown_version_is_404(client: TestClient, world: SimpleNamespace):
    response = _replay(client, world, uuid.uuid4())
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


def test_the_version_is_required(client: TestClient, world: SimpleNamespace):
    assert client.get(url(world)).status_code == 422


def test_another_sites_session_is_404(client_as: ClientAs, world: SimpleNamespace):
    response = _replay(client_as(Role.CLINICIAN, [world.other_site]), world, world.amended.id)
    assert response.status_code == 404
    assert "01-001" not in response.text


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.THERAPIST, Role.MEDICAL_MONITOR])
def test_clinical_alert_readers_may_replay(client_as: ClientAs, world: SimpleNamespace, role: Role):
    sites = [] if role is Role.MEDICAL_MONITOR else [world.site]
    response = _replay(client_as(role, sites), world, world.amended.id)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVICE, Role.COORDINATOR])
def test_a_role_without_clinical_alert_read_is_403(
    client_as: ClientAs, world: SimpleNamespace, role: Role
):
    """The coordinator sees visit alerts only; a replay is of a session's clinical findings."""
    sites = [] if role is Role.ADMIN else [world.site]
    response = _replay(client_as(role, sites), world, world.amended.id)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM


def test_a_replay_opens_no_alert_and_is_audited(
    client: TestClient, db: Session, world: SimpleNamespace
):
    def count(model: type) -> int:
        return db.scalar(select(func.count()).select_from(model)) or 0

    alerts_before = count(Alert)
    response = _replay(client, world, world.amended.id)
    assert response.status_code == 200
    assert response.json()["summary"]["target_findings"] > 0
    assert count(Alert) == alerts_before == 0
    [record] = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "replay",
            AuditRecord.entity_id == str(world.dosing_session.id),
        )
    )
    assert record.entity_type == "dosing_sessions"
    assert record.actor == "test-superuser:tester"
    assert record.after["target_protocol_version_id"] == str(world.amended.id)
    assert record.after["baseline_protocol_version_id"] == str(world.own.id)
