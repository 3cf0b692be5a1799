"""Fixtures and helpers of the page tests that act as a signed-in person: ``web`` (a browser-like
client that does not follow redirects) and ``person(role, *sites)`` (a new user of that role
at those sites, signed in on ``web`` through the sign-in form). Import the fixtures by their
function names (``web_client``, ``signed_in_person``); tests ask for ``web`` and ``person``."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditRecord, Site, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD
from tests.web.test_signin import form_token, sign_in


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


def audit_of(db: Session, entity_type: str, entity_id: object, action: str | None = None):
    """The audit records of one record, in the order they were written."""
    db.expire_all()
    stmt = select(AuditRecord).where(
        AuditRecord.entity_type == entity_type, AuditRecord.entity_id == str(entity_id)
    )
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    return db.scalars(stmt.order_by(AuditRecord.sequence)).all()


def post_form(web: TestClient, path: str, data: dict[str, str], page: str):
    """Post ``data`` to ``path`` with the form token of ``page``, as its form would."""
    return web.post(path, data={**data, "csrf_token": form_token(web, page)})
