"""The trial the alert tests share: a study with one site and a randomised participant."""

import pytest
from sqlalchemy.orm import Session

from app.models import Participant, Site
from tests.factories.trial import make_participant, make_site, make_study


@pytest.fixture
def site(db: Session) -> Site:
    return make_site(db, make_study(db))


@pytest.fixture
def participant(db: Session, site: Site) -> Participant:
    return make_participant(db, site, stage="randomised")
