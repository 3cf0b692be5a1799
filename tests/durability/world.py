"""A committed trial to post into from outside the test's transaction: one site, one participant
in a dosing session in progress, a bedside tablet's token and a clinician who can sign in. For
the tests that watch a real server process commit (or fail to)."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import make_engine
from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study

CLINICIAN = "clinician-1"


@dataclass(frozen=True)
class Trial:
    dosing_session_id: uuid.UUID
    device_token: str
    clinician: str = CLINICIAN
    password: str = TEST_PASSWORD


def seed_trial(database_url: str) -> Trial:
    """Seed a migrated, empty database and commit."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            session.info["actor"] = "test"
            study = make_study(session)
            site = make_site(session, study, "S01")
            participant = make_participant(session, site, "01-001", stage="randomised")
            dosing = make_dosing_session(
                session, participant, started_at=utcnow() - timedelta(hours=2), initial_dose_mg=80
            )
            _, device_token = users.create_device(session, "tablet-1", site.id)
            users.create_user(
                session,
                username=CLINICIAN,
                display_name="Clinician One",
                role=Role.CLINICIAN,
                password=TEST_PASSWORD,
                site_ids=[site.id],
            )
            session.commit()
            return Trial(dosing_session_id=dosing.id, device_token=device_token)
    finally:
        engine.dispose()
