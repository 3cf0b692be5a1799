from sqlalchemy import func, select

from app.demo.seed import DEMO_PASSWORD, seed_demo
from app.demo.tablet import DEMO_DEVICE
from app.models import AuditRecord, DosingSession, Participant, User, VitalReading
from app.permissions import Role
from tests.conftest import make_person
from tests.factories.trial import make_site, make_study


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
    first = seed_demo(db)
    counted = [select(func.count()).select_from(t) for t in (Participant, User, AuditRecord)]
    before = [db.scalar(count) for count in counted]
    again = seed_demo(db)
    assert not again.created
    assert [db.scalar(count) for count in counted] == before
    assert again.lines()[1:] == first.lines()[1:]


def test_the_summary_lists_the_demo_accounts_of_every_role_and_the_device_apart(db):
    site = make_site(db, make_study(db, code="OTHER"), code="X1")
    outsider = make_person(db, "outsider", Role.CLINICIAN, [site])

    summary = seed_demo(db)

    lines = summary.lines()
    assert not [line for line in lines if "outsider" in line]  # not the demo's account
    password_lines = [line for line in lines if DEMO_PASSWORD in line]
    assert password_lines == ["  demo accounts, each with the password vigil-demo-password:"]
    accounts = {account.username: account for account in summary.accounts}
    assert outsider.username not in accounts  # not the demo's, nor its password
    assert sorted(a.role for a in summary.accounts if a.role in {"sponsor", "pharmacist"}) == [
        "pharmacist",
        "sponsor",
    ]
    assert {account.role for account in summary.accounts} == {r.value for r in Role} - {"device"}
    assert [(d.username, d.role, d.sites) for d in summary.devices] == [
        (DEMO_DEVICE, "device", ("S01",))
    ]
    accounts_at = lines.index(password_lines[0])
    device_at = next(i for i, line in enumerate(lines) if DEMO_DEVICE in line)
    assert device_at > accounts_at + len(summary.accounts)  # listed after the people, apart
    assert "no password" in lines[device_at - 1]
    assert accounts["sponsor"].line().split() == ["sponsor", "sponsor", "all", "sites"]
    assert accounts["clinician1"].line().split() == ["clinician1", "clinician", "S01"]
