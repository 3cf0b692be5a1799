import pytest
from sqlalchemy.orm import Session

from app.models import DosingSession
from tests.auth.accounts import admin, http_client, settings_env  # noqa: F401 - fixtures
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study


@pytest.fixture
def dosing_session(db: Session) -> DosingSession:
    """An EXP1 session in progress since T0 (2026-02-02T08:00Z), 80 mg given at T0 + 30 min."""
    participant = make_participant(db, make_site(db, make_study(db)), stage="randomised")
    return make_dosing_session(db, participant, initial_dose_mg=80)
