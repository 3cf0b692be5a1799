"""Builders for dosing sessions, written straight to the tables (not through the services)."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.models import Dose, DosingSession, Participant, Visit
from tests.factories.trial import make_participant, make_site, make_study

T0 = datetime.fromisoformat("2026-02-02T08:00:00+00:00")


def make_dosing_session(
    db: Session,
    participant: Participant,
    *,
    visit_code: str = "EXP1",
    started_at: datetime | None = T0,
    initial_dose_mg: float | None = None,
    dosed_at: datetime | None = None,
) -> DosingSession:
    """A session for an enrolled participant's experimental visit, started unless started_at=None.

    With initial_dose_mg the initial dose is recorded at dosed_at (default: 30 min after start).
    """
    visit = db.scalar(
        select(Visit).where(Visit.participant_id == participant.id, Visit.code == visit_code)
    )
    assert visit is not None, f"participant has no visit {visit_code}; enrol them first"
    dosing_session = DosingSession(
        participant_id=participant.id,
        visit_id=visit.id,
        protocol_version_id=participant.protocol_version_id,
        status="in_progress" if started_at else "planned",
        started_at=started_at,
    )
    db.add(dosing_session)
    db.flush()
    if initial_dose_mg is not None:
        assert started_at is not None
        db.add(
            Dose(
                dosing_session_id=dosing_session.id,
                kind="initial",
                amount_mg=initial_dose_mg,
                administered_at=dosed_at or started_at + timedelta(minutes=30),
            )
        )
        db.flush()
    return dosing_session


def committed_session_in_progress(engine: Engine, started_at: datetime) -> uuid.UUID:
    """A randomised participant's session started at ``started_at`` with its initial dose of
    80 mg, committed to ``engine``'s database (for tests of concurrent transactions); its id."""
    with Session(engine) as session:
        session.info["actor"] = "test"
        participant = make_participant(
            session, make_site(session, make_study(session)), stage="randomised"
        )
        dosing = make_dosing_session(
            session, participant, started_at=started_at, initial_dose_mg=80
        )
        session.commit()
        return dosing.id
