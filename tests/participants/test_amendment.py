"""Moving a participant to a protocol amendment through the API, on both databases: who may,
what is refused and why, and what follows the amendment (later sessions, the visit schedule)."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.models import AuditRecord, Visit
from app.participants import service as participants
from app.participants.schemas import VisitOutcome, VisitReschedule
from app.permissions import Role
from app.protocols import service as protocols
from app.protocols.loader import parse_protocol_text
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import (
    MDMA,
    PSILOCYBIN,
    load_protocol,
    make_participant,
    make_site,
    make_study,
)

API = "/api/v1"
ENROLLED_ON = date(2026, 1, 5)
PREP2 = "  - {code: PREP2, name: Preparatory session 2, kind: preparatory, day: 10,"
FU = """  - {code: FU, name: Safety follow-up, kind: follow_up, day: 182,
     window: {before: 14, after: 14}, duration_minutes: 60}
"""
FU2 = """  - {code: FU2, name: Late safety follow-up, kind: follow_up, day: 365,
     window: {before: 14, after: 14}, duration_minutes: 60}
"""


def _amendment_text() -> str:
    """Version 1.5 of the MDMA protocol: PREP2 two days later, a late follow-up added."""
    text = MDMA.read_text(encoding="utf-8")
    assert 'version: "1.4"' in text and PREP2 in text and FU in text
    return (
        text.replace('version: "1.4"', 'version: "1.5"', 1)
        .replace(PREP2, PREP2.replace("day: 10,", "day: 12,"), 1)
        .replace(FU, FU + FU2, 1)
    )


def _trial(db):
    """A randomised participant under 1.4, then version 1.5 loaded."""
    study = make_study(db)
    site = make_site(db, study)
    participant = make_participant(db, site, stage="randomised", enrolled_on=ENROLLED_ON)
    current = protocols.get_version(db, participant.protocol_version_id)
    amended, _ = protocols.store(db, parse_protocol_text(_amendment_text(), "mdma-1.5.yaml"))
    return site, participant, current, amended


def _amend(client, participant, version, **changes):
    body = {
        "protocol_version_id": str(version.id),
        "reconsented_on": "2026-02-01",
        "reason": "amendment 2: later second preparatory session, late follow-up",
        **changes,
    }
    return client.post(f"{API}/participants/{participant.id}/amendment", json=body)


def _visits(db, participant) -> dict[str, Visit]:
    return {v.code: v for v in participants.visits_of(db, participant)}


def test_an_admin_moves_a_participant_and_their_later_sessions_run_under_the_amendment(
    client_as, db
):
    site, participant, current, amended = _trial(db)
    earlier = make_dosing_session(db, participant, visit_code="EXP1", started_at=None)
    admin = client_as(Role.ADMIN)

    moved = _amend(admin, participant, amended)

    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["protocol_version_id"] == str(amended.id)
    assert body["reconsented_on"] == "2026-02-01"
    assert body["arm_code"] == "BLINDED"  # an admin is blinded like everybody else
    db.refresh(earlier)
    assert earlier.protocol_version_id == current.id  # an existing session keeps its version
    coordinator = client_as(Role.COORDINATOR, [site])
    exp2 = _visits(db, participant)["EXP2"]
    created = coordinator.post(
        f"{API}/participants/{participant.id}/dosing-sessions", json={"visit_id": str(exp2.id)}
    )
    assert created.status_code == 201, created.text
    assert created.json()["protocol_version_id"] == str(amended.id)
    record = db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(participant.id), AuditRecord.action == "amend"
        )
    ).one()
    assert record.actor.startswith("admin:")
    assert record.before["protocol_version_id"] == str(current.id)
    assert record.after["protocol_version_id"] == str(amended.id)
    assert record.reason == (
        "amendment to version 1.5: amendment 2: later second preparatory session, late follow-up"
    )


def test_scheduled_visits_follow_the_amendment_and_recorded_ones_stay(client_as, db):
    _, participant, current, amended = _trial(db)
    before = _visits(db, participant)
    participants.record_outcome(
        db, before["PREP1"], VisitOutcome(status="completed", occurred_on=date(2026, 1, 8))
    )
    prep1_window = (before["PREP1"].window_start_on, before["PREP1"].window_end_on)

    assert _amend(client_as(Role.ADMIN), participant, amended).status_code == 200

    after = _visits(db, participant)
    prep2 = after["PREP2"]
    assert prep2.target_on == ENROLLED_ON + timedelta(days=12)
    assert prep2.scheduled_on == prep2.target_on
    assert (prep2.window_start_on, prep2.window_end_on) == (
        ENROLLED_ON + timedelta(days=9),
        ENROLLED_ON + timedelta(days=16),
    )
    assert prep2.protocol_version_id == amended.id
    fu2 = after["FU2"]
    assert (fu2.status, fu2.target_on) == ("scheduled", ENROLLED_ON + timedelta(days=365))
    assert fu2.sequence == len(after)
    prep1 = after["PREP1"]  # completed: kept as recorded, under the version it ran under
    assert (prep1.status, prep1.occurred_on) == ("completed", date(2026, 1, 8))
    assert (prep1.window_start_on, prep1.window_end_on) == prep1_window
    assert prep1.protocol_version_id == current.id


def test_a_rescheduled_visit_keeps_its_day_and_gets_the_new_window(client_as, db):
    _, participant, _, amended = _trial(db)
    prep2 = _visits(db, participant)["PREP2"]
    coordinator_day = date(2026, 1, 14)
    participants.reschedule(
        db, prep2, VisitReschedule(scheduled_on=coordinator_day, reason="therapist away")
    )

    assert _amend(client_as(Role.ADMIN), participant, amended).status_code == 200

    db.refresh(prep2)
    assert prep2.scheduled_on == coordinator_day
    assert prep2.target_on == ENROLLED_ON + timedelta(days=12)


def test_a_version_of_another_protocol_is_refused(client_as, db):
    _, participant, _, _ = _trial(db)
    other = load_protocol(db, PSILOCYBIN)

    refused = _amend(client_as(Role.ADMIN), participant, other)

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "protocol_version_id"
    assert "an amendment is a newer version of the same protocol" in refused.json()["detail"]


def test_the_same_or_an_older_version_is_refused(client_as, db):
    _, participant, current, amended = _trial(db)
    admin = client_as(Role.ADMIN)

    same = _amend(admin, participant, current)
    assert same.status_code == 422
    assert "version 1.4 is the version participant 01-001 is under" in same.json()["detail"]

    assert _amend(admin, participant, amended).status_code == 200
    older = _amend(admin, participant, current)
    assert older.status_code == 422
    assert "older than the version participant 01-001 is under (1.5)" in older.json()["detail"]


def test_an_unknown_version_is_refused(client_as, db):
    _, participant, _, _ = _trial(db)
    response = client_as(Role.ADMIN).post(
        f"{API}/participants/{participant.id}/amendment",
        json={
            "protocol_version_id": "0190a0a0-0000-7000-8000-000000000000",
            "reconsented_on": "2026-02-01",
            "reason": "amendment 2",
        },
    )
    assert response.status_code == 422
    assert "does not exist" in response.json()["detail"]


def test_a_reconsent_date_before_enrolment_or_in_the_future_is_refused(client_as, db):
    _, participant, _, amended = _trial(db)
    admin = client_as(Role.ADMIN)

    early = _amend(admin, participant, amended, reconsented_on="2026-01-04")
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "reconsented_on"
    assert "enrolment date" in early.json()["detail"]

    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    late = _amend(admin, participant, amended, reconsented_on=future)
    assert late.status_code == 422
    assert late.json()["errors"][0]["field"] == "reconsented_on"


def test_a_withdrawn_participant_is_not_moved(client_as, db):
    site, participant, _, amended = _trial(db)
    coordinator = client_as(Role.COORDINATOR, [site])
    withdrawn = coordinator.post(
        f"{API}/participants/{participant.id}/withdraw",
        json={"reason_code": "participant_decision"},
    )
    assert withdrawn.status_code == 200, withdrawn.text

    refused = _amend(client_as(Role.ADMIN), participant, amended)

    assert refused.status_code == 409
    assert "is withdrawn; only a participant still in the trial" in refused.json()["detail"]


def test_a_participant_with_a_session_in_progress_is_not_moved(client_as, db):
    _, participant, current, amended = _trial(db)
    running = make_dosing_session(db, participant)

    refused = _amend(client_as(Role.ADMIN), participant, amended)

    assert refused.status_code == 409
    assert f"dosing session {running.id} in progress" in refused.json()["detail"]
    db.refresh(participant)
    assert participant.protocol_version_id == current.id


def test_only_an_admin_moves_a_participant(client_as, db):
    site, participant, _, amended = _trial(db)
    for role in (Role.COORDINATOR, Role.CLINICIAN):
        refused = _amend(client_as(role, [site]), participant, amended)
        assert refused.status_code == 403
        assert "study:manage" in refused.json()["detail"]
    db.refresh(participant)
    assert participant.protocol_version_id != amended.id


def test_a_scheduled_visit_the_amendment_drops_stays_for_the_coordinator(client_as, db):
    _, participant, current, _ = _trial(db)
    without_fu = _amendment_text().replace(FU, "", 1).replace('version: "1.5"', 'version: "1.6"')
    dropped, _ = protocols.store(db, parse_protocol_text(without_fu, "mdma-1.6.yaml"))

    assert _amend(client_as(Role.ADMIN), participant, dropped).status_code == 200

    after = _visits(db, participant)
    fu = after["FU"]
    assert (fu.status, fu.protocol_version_id) == ("scheduled", current.id)
    assert after["FU2"].protocol_version_id == dropped.id
