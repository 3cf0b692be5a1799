from datetime import timedelta

from app.clock import utcnow
from app.models import Study
from tests.dosing.api import (
    at,
    attest_pair,
    create_session,
    fresh_normal_reading,
    give,
    parse,
    started_session,
    visit_id,
)
from tests.dosing.conftest import make_user
from tests.factories.trial import make_participant, make_site
from tests.pages import walk


def test_a_session_runs_from_plan_to_baseline_attestation(client, participant, therapists):
    lead, co = therapists
    planned = create_session(client, participant.id)
    assert planned["status"] == "planned"
    assert planned["visit_code"] == "EXP1"
    assert planned["protocol_version_id"] == str(participant.protocol_version_id)
    assert planned["doses"] == [] and planned["total_mg"] == 0
    assert planned["supplemental_window"] is None and planned["therapists"] is None
    sid = planned["id"]

    started = client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": at(0)})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "in_progress"
    assert client.get(f"/api/v1/participants/{participant.id}").json()["status"] == "in_treatment"

    presence = client.post(
        f"/api/v1/dosing-sessions/{sid}/therapist-presence",
        json={
            "lead_therapist_id": str(lead.id),
            "co_therapist_id": str(co.id),
            "present_at": at(-5),
            "reason": "attested by the site physician",
        },
    )
    assert presence.status_code == 200, presence.text
    assert presence.json()["therapists"]["lead_therapist_id"] == str(lead.id)
    assert presence.json()["therapists"]["co_therapist_id"] == str(co.id)

    assert give(client, sid, "initial", 80, 15).status_code == 201
    window = client.get(f"/api/v1/dosing-sessions/{sid}").json()["supplemental_window"]
    assert parse(window["opens_at"]) == parse(at(15 + 90))
    assert parse(window["closes_at"]) == parse(at(15 + 150))
    fresh_normal_reading(client, sid, 15 + 115)  # the dose gate wants fresh, quiet vitals
    assert give(client, sid, "supplemental", 40, 15 + 120).status_code == 201

    attested = client.post(
        f"/api/v1/dosing-sessions/{sid}/baseline-attestation",
        json={
            "attested_by_id": str(lead.id),
            "attested_at": at(470),
            "note": "BP 128/82, pulse 78, temp 36.9",
        },
    )
    assert attested.status_code == 200, attested.text
    assert attested.json()["baseline_attestation"]["note"] == "BP 128/82, pulse 78, temp 36.9"

    ended = client.post(f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(480)})
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    assert ended.json()["end_reason"] is None
    assert ended.json()["total_mg"] == 120
    assert [d["kind"] for d in ended.json()["doses"]] == ["initial", "supplemental"]


def test_only_randomised_or_in_treatment_participants_get_sessions(client, db, site):
    enrolled = make_participant(db, site, "01-002", stage="enrolled")
    response = client.post(
        f"/api/v1/participants/{enrolled.id}/dosing-sessions",
        json={"visit_id": visit_id(client, enrolled.id, "EXP1")},
    )
    assert response.status_code == 409
    assert "enrolled" in response.json()["detail"]


def test_a_session_needs_an_experimental_visit_of_this_participant(client, db, site, participant):
    preparatory = client.post(
        f"/api/v1/participants/{participant.id}/dosing-sessions",
        json={"visit_id": visit_id(client, participant.id, "PREP1")},
    )
    assert preparatory.status_code == 422
    assert preparatory.json()["errors"][0]["field"] == "visit_id"
    assert "preparatory" in preparatory.json()["detail"]

    other = make_participant(db, site, "01-009", stage="randomised")
    foreign = client.post(
        f"/api/v1/participants/{participant.id}/dosing-sessions",
        json={"visit_id": visit_id(client, other.id, "EXP1")},
    )
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "visit_id"


def test_one_session_per_visit(client, participant):
    create_session(client, participant.id)
    again = client.post(
        f"/api/v1/participants/{participant.id}/dosing-sessions",
        json={"visit_id": visit_id(client, participant.id, "EXP1")},
    )
    assert again.status_code == 409
    assert "EXP1" in again.json()["detail"]


def test_start_and_end_follow_the_lifecycle(client, participant):
    planned = create_session(client, participant.id)
    sid = planned["id"]
    not_started = client.post(f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(60)})
    assert not_started.status_code == 409
    assert "planned" in not_started.json()["detail"]

    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert (
        client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": future}).status_code
        == 422
    )
    naive = client.post(
        f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": "2026-02-02T08:00:00"}
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "started_at"

    assert (
        client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": at(0)}).status_code
        == 200
    )
    twice = client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": at(1)})
    assert twice.status_code == 409
    assert "in_progress" in twice.json()["detail"]

    reason = "participant asked to leave; vitals were not back at baseline"
    early = client.post(
        f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(-1), "end_reason": reason}
    )
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "ended_at"
    assert (
        client.post(
            f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(200), "end_reason": reason}
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/api/v1/dosing-sessions/{sid}/end", json={"ended_at": at(201), "end_reason": reason}
        ).status_code
        == 409
    )


def test_a_participant_has_one_session_in_progress_at_a_time(client, participant):
    started_session(client, participant.id, "EXP1")
    second = create_session(client, participant.id, "EXP2")
    response = client.post(
        f"/api/v1/dosing-sessions/{second['id']}/start", json={"started_at": at(30)}
    )
    assert response.status_code == 409
    assert "in progress" in response.json()["detail"]


def test_therapist_presence_needs_two_distinct_active_therapists(
    client, db, site, participant, therapists
):
    lead, co = therapists
    coordinator = make_user(db, site, "coordinator", role="coordinator")
    retired = make_user(db, site, "retired-therapist", active=False)
    sid = started_session(client, participant.id)["id"]

    def attest(lead_id, co_id):
        return client.post(
            f"/api/v1/dosing-sessions/{sid}/therapist-presence",
            json={
                "lead_therapist_id": str(lead_id),
                "co_therapist_id": str(co_id),
                "present_at": at(1),
                "reason": "attested by the site physician",
            },
        )

    same = attest(lead.id, lead.id)
    assert same.status_code == 422
    assert same.json()["errors"] == [
        {
            "field": "co_therapist_id",
            "message": "the co-therapist must be a different person from the lead",
        }
    ]
    not_therapist = attest(coordinator.id, co.id)
    assert not_therapist.status_code == 422
    assert not_therapist.json()["errors"][0]["field"] == "lead_therapist_id"
    assert "coordinator" in not_therapist.json()["errors"][0]["message"]
    inactive = attest(lead.id, retired.id)
    assert inactive.status_code == 422
    assert inactive.json()["errors"][0]["field"] == "co_therapist_id"
    assert "not active" in inactive.json()["errors"][0]["message"]
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["therapists"] is None

    assert attest(lead.id, co.id).status_code == 200
    ended = client.post(
        f"/api/v1/dosing-sessions/{sid}/end",
        json={"ended_at": at(300), "end_reason": "no dose given; participant withdrew consent"},
    )
    assert ended.status_code == 200, ended.text
    backfilled = attest(lead.id, co.id)
    assert backfilled.status_code == 409


def test_therapists_must_work_at_the_participants_site(client, db, participant, therapists):
    lead, _ = therapists
    other_site = make_site(db, db.get(Study, participant.study_id), "S02")
    visitor = make_user(db, other_site, "visiting-therapist")
    sid = started_session(client, participant.id)["id"]
    response = client.post(
        f"/api/v1/dosing-sessions/{sid}/therapist-presence",
        json={
            "lead_therapist_id": str(lead.id),
            "co_therapist_id": str(visitor.id),
            "present_at": at(1),
            "reason": "attested by the site physician",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "co_therapist_id"
    assert "site" in response.json()["errors"][0]["message"]


def test_baseline_attestation_comes_after_the_last_dose_once(
    client, db, site, participant, therapists
):
    lead, _ = therapists
    coordinator = make_user(db, site, "coordinator", role="coordinator")
    clinician = make_user(db, site, "site-physician", role="clinician")
    planned = create_session(client, participant.id)
    sid = planned["id"]

    def attest(user, minutes):
        return client.post(
            f"/api/v1/dosing-sessions/{sid}/baseline-attestation",
            json={"attested_by_id": str(user.id), "attested_at": at(minutes)},
        )

    assert attest(clinician, 10).status_code == 409  # not started
    client.post(f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": at(0)})
    attest_pair(client, sid, *therapists)
    assert give(client, sid, "initial", 80, 20).status_code == 201
    by_coordinator = attest(coordinator, 400)
    assert by_coordinator.status_code == 422
    assert by_coordinator.json()["errors"][0]["field"] == "attested_by_id"
    before_dose = attest(clinician, 10)
    assert before_dose.status_code == 422
    assert "last dose" in before_dose.json()["detail"]

    assert attest(clinician, 400).status_code == 200
    assert attest(lead, 410).status_code == 409
    no_more_doses = give(client, sid, "supplemental", 40, 130)
    assert no_more_doses.status_code == 409
    assert "baseline" in no_more_doses.json()["detail"]


def test_sessions_are_listed_by_status_and_participant_with_a_cursor(client, db, site):
    first = make_participant(db, site, "01-011", stage="randomised")
    second = make_participant(db, site, "01-012", stage="randomised")
    started_session(client, first.id, "EXP1")
    create_session(client, first.id, "EXP2")
    create_session(client, second.id, "EXP1")

    in_progress = client.get("/api/v1/dosing-sessions", params={"status": "in_progress"}).json()
    assert [s["participant_id"] for s in in_progress["items"]] == [str(first.id)]
    of_first = client.get(f"/api/v1/participants/{first.id}/dosing-sessions").json()["items"]
    assert [s["visit_code"] for s in of_first] == ["EXP1", "EXP2"]

    page = client.get(
        "/api/v1/dosing-sessions", params={"participant_id": str(first.id), "limit": 1}
    ).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(
        "/api/v1/dosing-sessions",
        params={"participant_id": str(first.id), "limit": 1, "cursor": page["next_cursor"]},
    ).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {page["items"][0]["visit_code"], rest["items"][0]["visit_code"]} == {"EXP1", "EXP2"}


def test_a_participants_sessions_are_pages_in_visit_order(client, db, participant):
    create_session(client, participant.id, "EXP3")
    create_session(client, participant.id, "EXP1")
    create_session(client, participant.id, "EXP2")
    url = f"/api/v1/participants/{participant.id}/dosing-sessions"
    for limit in (1, 2, 3):
        assert [s["visit_code"] for s in walk(client, url, limit)] == ["EXP1", "EXP2", "EXP3"]


def test_unknown_session_is_404(client):
    response = client.get("/api/v1/dosing-sessions/0190a0a0-0000-7000-8000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_session_cannot_start_before_the_participant_consented(client, participant):
    sid = create_session(client, participant.id)["id"]
    # make_participant consents on 2026-01-02 at a UTC site
    early = client.post(
        f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": "2026-01-01T23:00:00Z"}
    )
    assert early.status_code == 422, early.text
    assert early.json()["errors"][0]["field"] == "started_at"
    assert "before the participant's consent date 2026-01-02" in early.json()["detail"]
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["status"] == "planned"
    as_number = client.post(
        f"/api/v1/dosing-sessions/{sid}/start", json={"started_at": parse(at(0)).timestamp()}
    )
    assert as_number.status_code == 422, as_number.text
    assert client.get(f"/api/v1/dosing-sessions/{sid}").json()["status"] == "planned"
