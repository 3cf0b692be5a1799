from datetime import timedelta

from sqlalchemy import select

from app.clock import utcnow
from app.models import AuditRecord
from tests.dosing.api import (
    at,
    create_session,
    fresh_normal_reading,
    give,
    post_reading,
    server_time,
    started_session,
)
from tests.pages import walk


def _audit(db, dose_id):
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.entity_type == "doses", AuditRecord.entity_id == dose_id)
        .order_by(AuditRecord.id)
    )
    return list(db.scalars(stmt))


def test_initial_amount_must_be_one_the_protocol_allows(client, participant, therapists):
    sid = started_session(client, participant.id, "EXP1", pair=therapists)["id"]
    response = give(client, sid, "initial", 120, 10)
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Protocol violation"
    assert (
        "initial dose 120 mg is not an amount the protocol allows at EXP1 (80 mg)"
        in (body["detail"])
    )
    assert body["errors"][0]["field"] == "amount_mg"
    assert client.get(f"/api/v1/dosing-sessions/{sid}/doses").json()["items"] == []


def test_later_sessions_allow_either_listed_initial_amount(client, participant, therapists):
    sid = started_session(client, participant.id, "EXP2", pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    wrong_half = give(client, sid, "supplemental", 60, 110)
    assert wrong_half.status_code == 422
    assert "is not 0.5 x the 80 mg initial dose (40 mg)" in wrong_half.json()["detail"]
    fresh_normal_reading(client, sid, 105)  # the dose gate wants fresh, quiet vitals
    assert give(client, sid, "supplemental", 40, 110).status_code == 201
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["total_mg"] == 120


def test_supplemental_outside_the_window_is_refused_with_the_window(
    client, participant, therapists
):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    window = f"{at(10 + 90)[11:16]} (UTC+00:00) to {at(10 + 150)[11:16]} (UTC+00:00)"
    fresh_normal_reading(client, sid, 10 + 70)  # the dose gate wants fresh, quiet vitals
    early = give(client, sid, "supplemental", 40, 10 + 75)
    assert early.status_code == 422
    message = (
        "supplemental dose at 75 min after the initial dose is outside the protocol window "
        f"90-150 min ({window})"
    )
    assert early.json()["type"] == "https://vigil.invalid/problems/dose-outside-window"
    assert early.json()["title"] == "Dose outside the window"
    assert message in early.json()["detail"]
    assert early.json()["errors"] == [
        {
            "type": "https://vigil.invalid/problems/dose-outside-window",
            "field": "administered_at",
            "message": message,
        }
    ]
    fresh_normal_reading(client, sid, 10 + 145)
    late = give(client, sid, "supplemental", 40, 10 + 150 + 1 / 60)
    assert late.status_code == 422
    assert "at 150 min 1 s after the initial dose" in late.json()["detail"]
    at_edges = give(client, sid, "supplemental", 40, 10 + 150)
    assert at_edges.status_code == 201, at_edges.text


def test_a_deviation_is_recorded_with_its_reason_and_audited(client, db, participant, therapists):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    reason = "participant anxious; site physician authorised an earlier supplemental dose"
    fresh_normal_reading(client, sid, 10 + 70)  # the dose gate wants fresh, quiet vitals
    response = give(client, sid, "supplemental", 40, 10 + 75, deviation_reason=reason)
    assert response.status_code == 201, response.text
    assert response.json()["deviation_reason"] == reason

    shown = client.get(f"/api/v1/dosing-sessions/{sid}").json()
    assert [d["deviation_reason"] for d in shown["doses"]] == [None, reason]
    assert shown["total_mg"] == 120
    record = _audit(db, response.json()["id"])[0]
    assert record.action == "create"
    assert "outside the protocol window 90-150 min" in record.reason
    assert reason in record.reason


def test_a_deviation_reason_on_a_dose_that_follows_the_protocol_is_refused(
    client, participant, therapists
):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    response = give(client, sid, "initial", 80, 10, deviation_reason="no deviation really")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "deviation_reason"


def test_total_and_count_limits_can_only_be_passed_as_deviations(client, participant, therapists):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    give(client, sid, "initial", 80, 0)
    fresh_normal_reading(client, sid, 95)  # the dose gate wants fresh, quiet vitals
    assert give(client, sid, "supplemental", 40, 100).status_code == 201
    second = give(client, sid, "supplemental", 40, 120)
    assert second.status_code == 422
    detail = second.json()["detail"]
    assert "the protocol allows one" in detail
    assert "the session total would be 160 mg, above the protocol maximum of 120 mg" in detail
    recorded = give(client, sid, "supplemental", 40, 120, deviation_reason="vomited the first one")
    assert recorded.status_code == 201
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["total_mg"] == 160


def test_structural_rules_hold_even_with_a_deviation_reason(client, participant, therapists):
    planned = create_session(client, participant.id)
    not_running = give(client, planned["id"], "initial", 80, 10)
    assert not_running.status_code == 409
    assert "planned" in not_running.json()["detail"]

    sid = started_session(client, participant.id, "EXP2", pair=therapists)["id"]
    orphan = give(client, sid, "supplemental", 60, 100, deviation_reason="given by mistake")
    assert orphan.status_code == 422
    assert "needs the initial dose recorded first" in orphan.json()["detail"]
    before_start = give(client, sid, "initial", 120, -5)
    assert before_start.status_code == 422
    assert before_start.json()["errors"][0]["field"] == "administered_at"
    future = client.post(
        f"/api/v1/dosing-sessions/{sid}/doses",
        json={
            "kind": "initial",
            "amount_mg": 120,
            "administered_at": (utcnow() + timedelta(hours=1)).isoformat(),
        },
    )
    assert future.status_code == 422

    assert give(client, sid, "initial", 120, 10).status_code == 201
    second_initial = give(client, sid, "initial", 120, 20, deviation_reason="second capsule")
    assert second_initial.status_code == 422
    assert "already has an initial dose" in second_initial.json()["detail"]
    before_initial = give(client, sid, "supplemental", 60, 5, deviation_reason="whatever")
    assert before_initial.status_code == 422
    assert len(client.get(f"/api/v1/dosing-sessions/{sid}/doses").json()["items"]) == 1


def test_a_dose_entered_in_error_is_kept_audited_and_no_longer_counts(
    client, db, participant, therapists
):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    wrong = give(client, sid, "initial", 120, 10, deviation_reason="typed the EXP2 amount")
    assert wrong.status_code == 201
    dose_id = wrong.json()["id"]

    marked = client.post(
        f"/api/v1/doses/{dose_id}/entered-in-error",
        json={"reason": "amount typed wrong: 80 mg was given"},
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["record_status"] == "entered_in_error"
    assert marked.json()["error_reason"] == "amount typed wrong: 80 mg was given"

    session = client.get(f"/api/v1/dosing-sessions/{sid}").json()
    assert session["total_mg"] == 0
    assert session["supplemental_window"] is None
    assert [d["record_status"] for d in session["doses"]] == ["entered_in_error"]

    assert give(client, sid, "initial", 80, 10).status_code == 201
    doses = client.get(f"/api/v1/dosing-sessions/{sid}/doses").json()["items"]
    assert [(d["amount_mg"], d["record_status"]) for d in doses] == [
        (120, "entered_in_error"),
        (80, "valid"),
    ]
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["total_mg"] == 80

    records = _audit(db, dose_id)
    assert [r.action for r in records] == ["create", "entered_in_error"]
    assert "not an amount the protocol allows" in records[0].reason
    assert records[1].reason == "amount typed wrong: 80 mg was given"
    assert records[1].before == {"record_status": "valid", "error_reason": None}
    assert records[1].after["record_status"] == "entered_in_error"

    again = client.post(f"/api/v1/doses/{dose_id}/entered-in-error", json={"reason": "second time"})
    assert again.status_code == 409


def test_entered_in_error_needs_a_reason(client, participant, therapists):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    dose_id = give(client, sid, "initial", 80, 10).json()["id"]
    response = client.post(f"/api/v1/doses/{dose_id}/entered-in-error", json={})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"


def test_a_dose_amount_is_a_json_number(client, db, participant, therapists):
    sid = started_session(client, participant.id, "EXP1", pair=therapists)["id"]
    for amount in ("80", True):
        response = give(client, sid, "initial", amount, 10)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "amount_mg"
    assert client.get(f"/api/v1/dosing-sessions/{sid}/doses").json()["items"] == []
    assert db.scalars(select(AuditRecord).where(AuditRecord.entity_type == "doses")).all() == []


def test_doses_are_pages_in_the_order_given_not_the_order_recorded(client, participant, therapists):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    wrong = give(client, sid, "initial", 120, 10, deviation_reason="typed the EXP2 amount")
    client.post(f"/api/v1/doses/{wrong.json()['id']}/entered-in-error", json={"reason": "typo"})
    assert give(client, sid, "initial", 80, 5).status_code == 201  # given earlier, recorded later

    url = f"/api/v1/dosing-sessions/{sid}/doses"
    expected = [(80, "valid"), (120, "entered_in_error")]
    for limit in (1, 2):
        doses = walk(client, url, limit)
        assert [(d["amount_mg"], d["record_status"]) for d in doses] == expected


def test_grade_3_hypertension_keeps_the_supplemental_dose_closed_until_resolved(
    client, participant, therapists
):
    sid = started_session(client, participant.id, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    with server_time(10 + 60):
        post_reading(client, sid, 10 + 60, SYSBP=164, DIABP=92)
    alerts = client.get("/api/v1/alerts", params={"dosing_session_id": sid}).json()["items"]
    [alert] = [a for a in alerts if a["severity"] == "critical"]
    assert alert["rule_id"] == "hypertension-grade-3"
    fresh_normal_reading(client, sid, 10 + 95)  # blood pressure back down, vitals fresh

    with server_time(10 + 96):
        acknowledged = client.post(
            f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "seen"}
        )
    assert acknowledged.status_code == 200, acknowledged.text
    refused = give(client, sid, "supplemental", 40, 10 + 97)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "https://vigil.invalid/problems/dose-gate-open-alert"
    assert "an open critical alert (hypertension-grade-3) blocks it" in refused.json()["detail"]

    with server_time(10 + 98):
        resolved = client.post(
            f"/api/v1/alerts/{alert['id']}/resolve", json={"resolution": "assessed; BP 122/78"}
        )
    assert resolved.status_code == 200, resolved.text
    # judged on what was known when it was given: the alert was open until 10+98
    assert give(client, sid, "supplemental", 40, 10 + 97).status_code == 409
    given = give(client, sid, "supplemental", 40, 10 + 100)
    assert given.status_code == 201, given.text
