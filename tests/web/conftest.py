"""The page tests' fixtures: ``web``, a browser-like client that does not follow redirects, and
``person(role, *sites)``, a new user of that role at those sites, signed in on ``web`` through
the sign-in form."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Site, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD
from tests.web.test_signin import sign_in


@pytest.fixture(name="web")
def web_client(anonymous_client: TestClient) -> TestClient:
    anonymous_client.follow_redirects = False
    return anonymous_client


@pytest.fixture(name="person")
def signed_in_person(db: Session, web: TestClient) -> Callable[..., User]:
    made: list[User] = []

    def make(role: Role, *sites: Site) -> User:
        user = users.create_user(
            db,
            username=f"web-{role.value.replace('_', '-')}-{len(made) + 1}",
            display_name=f"{role.value.title()} {len(made) + 1}",
            role=role,
            password=TEST_PASSWORD,
            site_ids=[site.id for site in sites],
        )
        made.append(user)
        web.cookies.clear()
        assert sign_in(web, user.username).status_code == 303
        return user

    return make
