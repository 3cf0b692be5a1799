"""Every database test runs twice: on SQLite and on PostgreSQL (VIGIL_TEST_POSTGRES_URL).

The schema is built by running the migrations, never create_all. Each backend gets a fresh
database for the session (a uniquely named one on the shared PostgreSQL server, dropped after);
each test runs in a transaction that is rolled back, the app's commits becoming savepoints.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import app.audit.recorder  # noqa: F401 - the audit listener
from app import migrations
from app.db import get_session, make_engine
from app.main import create_app
from app.users import service as users

POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL")
# Production argon2 costs ~0.5 s a hash; tests that are not about hashing use a cheap one.
CHEAP_PASSWORD_HASH = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
BACKENDS = ["sqlite", "postgresql"]


def pytest_report_header() -> str:
    if POSTGRES_URL:
        return f"PostgreSQL leg: {make_url(POSTGRES_URL).render_as_string(hide_password=True)}"
    return "PostgreSQL leg: SKIPPED (set VIGIL_TEST_POSTGRES_URL to run it)"


def _create_postgres_database() -> tuple[str, Engine]:
    assert POSTGRES_URL
    name = f"vigil_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    return url, admin


def _drop_postgres_database(url: str, admin: Engine) -> None:
    name = make_url(url).database
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def fresh_database_url(tmp_path_factory: pytest.TempPathFactory):
    """A factory of empty, uniquely named databases of one backend, cleaned up at the end."""
    created: list[tuple[str, Engine | None]] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'vigil.db'}"
            created.append((url, None))
            return url
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL leg skipped: VIGIL_TEST_POSTGRES_URL is not set")
        url, admin = _create_postgres_database()
        created.append((url, admin))
        return url

    yield make
    for url, admin in created:
        if admin is not None:
            _drop_postgres_database(url, admin)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, fresh_database_url) -> str:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    session.info["actor"] = "test"
    yield session
    session.close()
    transaction.rollback()
    connection.close()


@pytest.fixture(scope="session")
def application():
    return create_app()


@pytest.fixture
def client(db: Session, application) -> Iterator[TestClient]:

    def session_override() -> Iterator[Session]:
        db.commit()  # what the test set up before the request is committed, as in real life
        db.info["actor"] = "anonymous"
        try:
            yield db
        except Exception:
            db.rollback()
            raise
        else:
            db.commit()

    application.dependency_overrides[get_session] = session_override
    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client
    application.dependency_overrides.clear()


@pytest.fixture(autouse=True)
def cheap_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "password_hash", CHEAP_PASSWORD_HASH)
