"""Signed-in web clients for the page tests: a person of a role at a site, with a password,
signed in through the sign-in form; the form token of a page."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import Site, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD
from tests.web.test_signin import TOKEN, form_token, sign_in

__all__ = ["TEST_PASSWORD", "TOKEN", "form_token", "person", "signed_in"]


def person(db: Session, username: str, role: Role, site: Site) -> User:
    return users.create_user(
        db,
        username=username,
        display_name=username.replace("-", " ").title(),
        role=role,
        password=TEST_PASSWORD,
        site_ids=[site.id],
    )


def signed_in(client: TestClient, user: User) -> TestClient:
    client.follow_redirects = False
    answer = sign_in(client, user.username)
    assert answer.status_code == 303, answer.text
    return client
