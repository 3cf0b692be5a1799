"""GET .../supplemental-dose-gate with as_of and amount_mg, and the refusals of a supplemental
dose it foretells: one problem type per reason, the same entries in both."""

from datetime import timedelta

from app.clock import utcnow
from tests.dosing.api import (
    STARTED,
    at,
    create_session,
    fresh_normal_reading,
    give,
    post_reading,
    server_time,
    started_session,
)

PROBLEMS = "https://vigil.invalid/problems/"


def gate(client, sid, **params):
    response = client.get(f"/api/v1/dosing-sessions/{sid}/supplemental-dose-gate", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def types(reasons):
    return [reason["type"].removeprefix(PROBLEMS) for reason in reasons]


def dosed_session(client, participant, therapists, code="EXP1"):
    sid = started_session(client, participant.id, code, pair=therapists)["id"]
    assert give(client, sid, "initial", 80, 10).status_code == 201
    return sid


def test_the_gate_judges_the_amount_proposed_and_the_dose_is_refused_for_the_same_reason(
    client, participant, therapists
):
    sid = dosed_session(client, participant, therapists)
    fresh_normal_reading(client, sid, 10 + 95)
    assert gate(client, sid, as_of=at(10 + 100))["open"] is True
    closed = gate(client, sid, as_of=at(10 + 100), amount_mg=60)
    assert closed["open"] is False
    assert closed["amount_mg"] == 60 and closed["supplemental_mg"] == 40
    assert types(closed["reasons"]) == ["dose-amount", "dose-max-total"]

    refused = give(client, sid, "supplemental", 60, 10 + 100)
    assert refused.status_code == 422
    body = refused.json()
    assert body["type"] == f"{PROBLEMS}dose-amount"
    assert body["title"] == "Dose amount"
    assert body["errors"] == closed["reasons"]
    assert body["detail"] == (
        "supplemental dose 60 mg is not 0.5 x the 80 mg initial dose (40 mg); the session total "
        "would be 140 mg, above the protocol maximum of 120 mg at EXP1. To record a dose given "
        "against the protocol, send deviation_reason"
    )
    assert give(client, sid, "supplemental", 40, 10 + 100).status_code == 201


def test_readings_received_after_as_of_were_not_known_then(client, participant, therapists):
    """A reading taken at T+95 that reached Vigil at T+125: a dose given at T+100 was given
    without it, so the gate was closed then, and it is open from T+125."""
    sid = dosed_session(client, participant, therapists)
    with server_time(10 + 125):
        post_reading(client, sid, 10 + 95)
    before = gate(client, sid, as_of=at(10 + 100))
    assert types(before["reasons"]) == ["dose-gate-stale-vitals"] * 4
    assert before["reasons"][0]["message"] == "systolic BP has not been measured in this session"
    assert gate(client, sid, as_of=at(10 + 125))["open"] is True

    refused = give(client, sid, "supplemental", 40, 10 + 100)
    assert refused.status_code == 409
    assert refused.json()["type"] == f"{PROBLEMS}dose-gate-stale-vitals"
    assert refused.json()["errors"] == before["reasons"]
    assert give(client, sid, "supplemental", 40, 10 + 125).status_code == 201


def test_an_age_past_the_limit_is_never_shown_as_the_limit(client, participant, therapists):
    sid = dosed_session(client, participant, therapists)
    fresh_normal_reading(client, sid, 10 + 95)
    closed = gate(client, sid, as_of=at(10 + 125 + 1 / 3))  # 30 min 20 s after
    messages = {reason["message"] for reason in closed["reasons"]}
    assert messages >= {
        f"the latest systolic BP, at {at(10 + 95)[11:16]} (UTC+00:00), is 30 min 20 s old; "
        "the gate needs one at most 30 min old"
    }
    assert gate(client, sid, as_of=at(10 + 125))["open"] is True  # exactly 30 min is fine


def test_several_reasons_name_the_first_by_priority_and_list_every_one(
    client, participant, therapists
):
    sid = dosed_session(client, participant, therapists)
    with server_time(10 + 60):
        post_reading(client, sid, 10 + 60, SYSBP=165, DIABP=92)  # opens a critical alert
    closed = gate(client, sid, as_of=at(10 + 70))
    assert types(closed["reasons"]) == [
        "dose-outside-window",
        "dose-gate-open-alert",
        "dose-gate-vitals",
    ]
    assert closed["reasons"][0]["field"] == "administered_at"
    assert {reason["field"] for reason in closed["reasons"][1:]} == {"gate"}
    refused = give(client, sid, "supplemental", 40, 10 + 70)
    body = refused.json()
    assert refused.status_code == 422
    assert body["type"] == f"{PROBLEMS}dose-outside-window"
    assert body["errors"] == closed["reasons"]
    assert "send deviation_reason" in body["detail"]
    assert "gate_override_reason" in body["detail"]

    # a deviation reason answers the window only: the gate's rules still refuse it
    deviating = give(client, sid, "supplemental", 40, 10 + 70, deviation_reason="asked early")
    assert deviating.status_code == 409
    assert deviating.json()["type"] == f"{PROBLEMS}dose-gate-open-alert"
    assert deviating.json()["errors"] == closed["reasons"][1:]


def test_a_session_not_in_progress_closes_the_gate_and_refuses_the_dose(client, participant):
    planned = create_session(client, participant.id)["id"]
    closed = gate(client, planned)
    assert closed["reasons"] == [
        {
            "type": f"{PROBLEMS}session-not-in-progress",
            "field": "dosing_session_id",
            "message": "dosing session is planned; doses are recorded while it is in progress",
        }
    ]
    refused = give(client, planned, "supplemental", 40, 100)
    assert refused.status_code == 409
    assert refused.json()["type"] == f"{PROBLEMS}session-not-in-progress"
    assert refused.json()["errors"] == closed["reasons"]


def test_a_supplemental_dose_without_an_initial_one_is_out_of_order(client, participant):
    sid = started_session(client, participant.id)["id"]
    closed = gate(client, sid, as_of=at(100))
    assert types(closed["reasons"]) == ["dose-order"]
    refused = give(client, sid, "supplemental", 40, 100, deviation_reason="forgot the first")
    assert refused.status_code == 422
    assert refused.json()["type"] == f"{PROBLEMS}dose-order"
    assert refused.json()["errors"] == closed["reasons"]


def test_as_of_needs_a_timezone_and_a_moment_of_the_session_not_in_the_future(
    client, participant, therapists
):
    sid = dosed_session(client, participant, therapists)
    url = f"/api/v1/dosing-sessions/{sid}/supplemental-dose-gate"
    naive = client.get(url, params={"as_of": at(100)[:19]})
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "as_of"
    assert "timezone" in naive.json()["errors"][0]["message"]
    future = client.get(url, params={"as_of": (utcnow() + timedelta(hours=1)).isoformat()})
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "as_of"
    before = client.get(url, params={"as_of": (STARTED - timedelta(minutes=5)).isoformat()})
    assert before.status_code == 422
    assert "session started" in before.json()["errors"][0]["message"]
    zero = client.get(url, params={"amount_mg": 0})
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"] == "amount_mg"


def test_each_refusal_type_is_documented_on_the_dose_route(client):
    document = client.get("/api/v1/openapi.json").json()
    responses = document["paths"]["/api/v1/dosing-sessions/{dosing_session_id}/doses"]["post"][
        "responses"
    ]
    from app.dosing.refusals import PROBLEM_TYPES

    for refusal, kind in PROBLEM_TYPES.items():
        assert f"`{refusal.value}` ({kind.title})" in responses[str(kind.status)]["description"]
    parameters = document["paths"][
        "/api/v1/dosing-sessions/{dosing_session_id}/supplemental-dose-gate"
    ]["get"]["parameters"]
    assert {"as_of", "amount_mg"} <= {p["name"] for p in parameters}
