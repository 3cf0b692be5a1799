"""Builders and fixtures for tests that sign in: accounts, tokens, a movable clock, settings.

Fixtures are imported explicitly by the test modules that use them (`from tests.auth.accounts
import ...`), so this package needs no conftest of its own.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.auth import tokens
from app.config import get_settings
from app.db import get_session
from app.models import AuditRecord, Site, User
from app.permissions import Role
from app.users.service import create_user
from tests.factories.trial import make_site, make_study

PASSWORD = "correct horse battery staple"


def make_account(
    db: Session,
    username: str,
    role: Role | str,
    sites: list[Site] | tuple[Site, ...] = (),
    password: str = PASSWORD,
) -> User:
    return create_user(
        db,
        username=username,
        display_name=username.replace("-", " ").title(),
        role=Role(role),
        password=password,
        site_ids=[s.id for s in sites],
    )


def bearer(
    db: Session,
    user: User,
    kind: tokens.TokenKind = tokens.TokenKind.SESSION,
    ttl: timedelta | None = timedelta(hours=1),
) -> dict[str, str]:
    _, plaintext = tokens.issue(db, user, kind, ttl=ttl)
    return {"Authorization": f"Bearer {plaintext}"}


def audit_events(db: Session, action: str, entity_id: str | None = None) -> list[AuditRecord]:
    stmt = select(AuditRecord).where(AuditRecord.action == action)
    if entity_id is not None:
        stmt = stmt.where(AuditRecord.entity_id == entity_id)
    return list(db.scalars(stmt.order_by(AuditRecord.sequence)))


@pytest.fixture
def site(db: Session) -> Site:
    return make_site(db, make_study(db))


@pytest.fixture
def admin(db: Session) -> User:
    return make_account(db, "root-admin", Role.ADMIN)


@pytest.fixture
def admin_headers(db: Session, admin: User) -> dict[str, str]:
    return bearer(db, admin)


class MovableClock:
    """What app.clock.utcnow answers, everywhere it was imported, moved by ``advance``."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return _real_utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


_real_utcnow = clock.utcnow


@pytest.fixture
def moved_clock(monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    """Patch app.clock.utcnow and every `from app.clock import utcnow` taken of it."""
    movable = MovableClock()
    for name, module in list(sys.modules.items()):
        if (name == "app" or name.startswith("app.")) and (
            getattr(module, "utcnow", None) is _real_utcnow
        ):
            monkeypatch.setattr(module, "utcnow", movable.now)
    return movable


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set VIGIL_* variables for one test: ``settings_env(login_max_failures=3)``."""

    def apply(**values: object) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"VIGIL_{key.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


@contextmanager
def client_of(application: FastAPI, db: Session, **kwargs: object) -> Iterator[TestClient]:
    """A TestClient of ``application`` on the test's transaction, as tests/conftest.py does it
    for the shared app; for tests that build an app with settings of their own."""

    def session_override() -> Iterator[Session]:
        db.commit()
        db.info["actor"] = "anonymous"
        try:
            yield db
        except Exception:
            db.rollback()
            raise
        else:
            db.commit()

    application.dependency_overrides[get_session] = session_override
    try:
        with TestClient(application, raise_server_exceptions=False, **kwargs) as test_client:  # type: ignore[arg-type]
            yield test_client
    finally:
        application.dependency_overrides.clear()


@pytest.fixture
def http_client(db: Session, application: FastAPI) -> Iterator[TestClient]:
    """The shared app with no credentials: each request says who it is (or signs in)."""
    with client_of(application, db) as test_client:
        yield test_client
