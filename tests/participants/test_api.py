from datetime import date, timedelta

from sqlalchemy import select

from app.models import AuditRecord
from tests.factories.trial import make_participant, make_site, make_study
from tests.pages import walk


def _new(client, db, subject="01-010"):
    study = make_study(db)
    site = make_site(db, study)
    response = client.post(
        f"/api/v1/studies/{study.id}/participants",
        json={
            "site_id": str(site.id),
            "subject_id": subject,
            "sex": "F",
            "age_years": 33,
            "consented_on": "2026-01-02",
        },
    )
    assert response.status_code == 201, response.text
    return study, site, response.json()


def test_participant_starts_in_screening_and_subject_ids_are_unique(client, db):
    study, site, participant = _new(client, db)
    assert participant["status"] == "screening"
    assert participant["arm_code"] is None
    duplicate = client.post(
        f"/api/v1/studies/{study.id}/participants",
        json={
            "site_id": str(site.id),
            "subject_id": "01-010",
            "sex": "M",
            "age_years": 40,
            "consented_on": "2026-01-02",
        },
    )
    assert duplicate.status_code == 409
    assert "01-010" in duplicate.json()["detail"]


def test_subject_id_must_look_pseudonymous(client, db):
    study = make_study(db)
    site = make_site(db, study)
    response = client.post(
        f"/api/v1/studies/{study.id}/participants",
        json={
            "site_id": str(site.id),
            "subject_id": "Jane Doe",
            "sex": "F",
            "age_years": 33,
            "consented_on": "2026-01-02",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "subject_id"


def test_enrolment_answers_the_participant_and_lays_out_the_protocol_visit_schedule(client, db):
    _, _, participant = _new(client, db)
    enrolled = client.post(
        f"/api/v1/participants/{participant['id']}/enrol", json={"enrolled_on": "2026-03-02"}
    )
    assert enrolled.status_code == 200, enrolled.text
    answered = enrolled.json()
    assert (answered["id"], answered["status"]) == (participant["id"], "enrolled")
    assert answered["enrolled_on"] == "2026-03-02"
    visits = _visits(client, participant["id"])
    by_code = {v["code"]: v for v in visits}
    assert {"PREP1", "EXP1", "EXP2", "EXP3"} <= set(by_code)
    kinds = [v["kind"] for v in visits]
    assert kinds.count("experimental") == 3
    exp1 = by_code["EXP1"]
    assert exp1["window_start_on"] <= exp1["target_on"] <= exp1["window_end_on"]
    assert not any(v["out_of_window"] for v in visits)
    targets = [v["target_on"] for v in visits]
    assert targets == sorted(targets)


def _visits(client, participant_id, limit=50):
    return walk(client, f"/api/v1/participants/{participant_id}/visits", limit)


def test_visits_are_pages_in_schedule_order(client, db):
    _, _, participant = _new(client, db)
    client.post(
        f"/api/v1/participants/{participant['id']}/enrol", json={"enrolled_on": "2026-03-02"}
    )
    everything = _visits(client, participant["id"])
    assert [v["sequence"] for v in everything] == list(range(1, len(everything) + 1))
    for limit in (1, 2, 3):
        assert _visits(client, participant["id"], limit) == everything


def test_reschedule_outside_window_is_kept_and_flagged_with_reason(client, db):
    _, _, participant = _new(client, db)
    client.post(
        f"/api/v1/participants/{participant['id']}/enrol", json={"enrolled_on": "2026-03-02"}
    )
    exp1 = next(v for v in _visits(client, participant["id"]) if v["code"] == "EXP1")
    late = date.fromisoformat(exp1["window_end_on"]) + timedelta(days=3)
    no_reason = client.post(
        f"/api/v1/visits/{exp1['id']}/reschedule", json={"scheduled_on": late.isoformat()}
    )
    assert no_reason.status_code == 422
    moved = client.post(
        f"/api/v1/visits/{exp1['id']}/reschedule",
        json={"scheduled_on": late.isoformat(), "reason": "Participant had COVID-19"},
    )
    assert moved.status_code == 200
    assert moved.json()["out_of_window"] is True
    history = client.get(f"/api/v1/history/visits/{exp1['id']}").json()["items"]
    assert history[-1]["reason"] == "Participant had COVID-19"
    assert history[-1]["before"]["scheduled_on"] == exp1["scheduled_on"]
    assert history[-1]["after"]["scheduled_on"] == late.isoformat()


def test_lifecycle_refuses_skipping_steps(client, db):
    _, _, participant = _new(client, db)
    response = client.post(f"/api/v1/participants/{participant['id']}/randomise")
    assert response.status_code == 409
    assert "screening" in response.json()["detail"]


def test_randomisation_is_balanced_within_each_block(client, db):
    study = make_study(db)
    site = make_site(db, study)
    arms = []
    for i in range(8):
        p = make_participant(db, site, f"01-{i:03d}", stage="enrolled")
        response = client.post(f"/api/v1/participants/{p.id}/randomise")
        assert response.status_code == 200
        arms.append(response.json()["arm_code"])
    assert len(set(arms)) == 2
    for block in (arms[:4], arms[4:]):
        assert block.count(block[0]) == 2


def test_withdrawal_needs_a_coded_reason_and_is_final(client, db):
    study = make_study(db)
    site = make_site(db, study)
    p = make_participant(db, site, stage="enrolled")
    uncoded = client.post(
        f"/api/v1/participants/{p.id}/withdraw", json={"reason_code": "felt like it"}
    )
    assert uncoded.status_code == 422
    other = client.post(f"/api/v1/participants/{p.id}/withdraw", json={"reason_code": "other"})
    assert other.status_code == 422
    assert "reason_text" in other.json()["detail"]
    done = client.post(
        f"/api/v1/participants/{p.id}/withdraw",
        json={"reason_code": "lost_to_follow_up", "reason_text": "No contact for 6 weeks"},
    )
    assert done.status_code == 200
    assert done.json()["status"] == "withdrawn"
    assert done.json()["status_reason_code"] == "lost_to_follow_up"
    again = client.post(f"/api/v1/participants/{p.id}/randomise")
    assert again.status_code == 409
    record = db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(p.id), AuditRecord.action == "withdraw"
        )
    ).one()
    assert record.before["status"] == "enrolled"
    assert record.reason == "No contact for 6 weeks"


def test_missed_visit_needs_a_reason(client, db):
    study = make_study(db)
    site = make_site(db, study)
    p = make_participant(db, site, stage="enrolled")
    visit = client.get(f"/api/v1/participants/{p.id}/visits").json()["items"][1]
    missing = client.post(f"/api/v1/visits/{visit['id']}/outcome", json={"status": "missed"})
    assert missing.status_code == 422
    missed = client.post(
        f"/api/v1/visits/{visit['id']}/outcome", json={"status": "missed", "reason": "Snowstorm"}
    )
    assert missed.json()["status"] == "missed"
