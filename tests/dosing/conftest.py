import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import Participant, Site, User, user_sites
from tests.auth.accounts import admin, http_client, settings_env  # noqa: F401 - fixtures
from tests.factories.trial import make_participant, make_site, make_study


def make_user(
    db: Session, site: Site, username: str, role: str = "therapist", active: bool = True
) -> User:
    """A user of the site, written straight to the table (no slow password hashing)."""
    user = User(
        username=username,
        display_name=username.title(),
        role=role,
        password_hash="not-a-real-hash",
        active=active,
    )
    db.add(user)
    db.flush()
    db.execute(insert(user_sites).values(user_id=user.id, site_id=site.id))
    return user


@pytest.fixture
def site(db: Session) -> Site:
    return make_site(db, make_study(db))


@pytest.fixture
def participant(db: Session, site: Site) -> Participant:
    return make_participant(db, site, stage="randomised")


@pytest.fixture
def therapists(db: Session, site: Site) -> tuple[User, User]:
    return make_user(db, site, "lead-therapist"), make_user(db, site, "co-therapist")
