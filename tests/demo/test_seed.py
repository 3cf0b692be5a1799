from sqlalchemy import func, select

from app.demo.seed import seed_demo
from app.models import AuditRecord, DosingSession, Participant, VitalReading


def test_demo_study_has_every_stage_and_a_live_session(db, client):
    summary = seed_demo(db)
    assert summary.created
    statuses = {status for _, _, status in summary.participants}
    assert len(summary.participants) == 8
    assert {
        "screening",
        "screen_failed",
        "enrolled",
        "randomised",
        "in_treatment",
        "withdrawn",
        "completed",
    } <= statuses
    assert {site for site, _, _ in summary.participants} == {"S01", "S02"}
    live = db.get(DosingSession, summary.live_session_id)
    assert live.status == "in_progress"
    readings = db.scalar(select(func.count()).where(VitalReading.dosing_session_id == live.id))
    assert readings >= 2
    # what the seed wrote is audited like any other write
    db.commit()
    assert db.scalar(select(func.count()).select_from(AuditRecord)) > 100
    # and the API serves it: the tablet finds the live session the same way
    page = client.get("/api/v1/dosing-sessions", params={"status": "in_progress"}).json()
    assert [s["id"] for s in page["items"]] == [str(live.id)]


def test_seeding_twice_changes_nothing(db):
    seed_demo(db)
    before = db.scalar(select(func.count()).select_from(Participant))
    again = seed_demo(db)
    assert not again.created
    assert db.scalar(select(func.count()).select_from(Participant)) == before
