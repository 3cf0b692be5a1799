"""Every database test runs twice: on SQLite and on PostgreSQL (VIGIL_TEST_POSTGRES_URL).

The schema is built by running the migrations, never create_all. Each backend gets a fresh
database for the session (a uniquely named one on the shared PostgreSQL server, dropped after);
each test runs in a transaction that is rolled back, the app's commits becoming savepoints.

API clients, all on the test's transaction and all signing in with a real bearer token (created
in that transaction, resolved by the app like any other):
- ``client``: a test-only superuser: the role ``test-superuser``, which the permission table is
  patched to allow everything, with every site and every arm in sight. For the tests of what the
  API does, not of who may do it. Its audit actor is ``test-superuser:tester``.
- ``client_as(role, sites=[...])``: a new user of a real role under the real, unpatched table.
- ``anonymous_client``: no credentials at all.
"""

import os

# The apps that tests build run no scheduler of their own; its tests start one where they need
# it. Set before app modules are imported: app.main builds an app (and reads settings) on import.
os.environ.setdefault("VIGIL_SCHEDULER_INTERVAL_SECONDS", "0")
# the outbox dispatcher of a TestClient app would read the app's own database, not the test's: off
os.environ.setdefault("VIGIL_OUTBOX_POLL_SECONDS", "0")

import itertools
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest.mock import patch

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import TypeAdapter
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import listeners, migrations
from app import permissions as permissions_module
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.alerts.evaluation import Judgment
from app.assessments import service as assessments
from app.assessments.schemas import AssessmentCreate
from app.auth import passwords, tokens
from app.auth import principal as principal_module
from app.db import get_session, make_engine
from app.main import create_app
from app.models import Dose, DosingSession, Site, Study, User, VitalReading, user_sites
from app.notes import service as notes
from app.notes.schemas import NoteCreate
from app.participants import service as participants
from app.permissions import ALL_SITES_ROLES, ROLE_PERMISSIONS, UNBLINDED_ROLES, Role
from app.users import service as users
from app.vitals import service as vitals
from tests.factories.alerts import make_alert
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import load_protocol, make_participant, make_site, make_study

# The sessions of every test are audited and announce their alert changes, as the app's are.
listeners.install()

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
def api(db: Session, application: FastAPI) -> Iterator[FastAPI]:
    """The application with every request on the test's transaction."""

    def session_override() -> Iterator[Session]:
        db.commit()  # what the test set up before the request is committed, as in real life
        db.info["actor"] = "anonymous"  # until the request's principal is resolved
        try:
            yield db
        except Exception:
            db.rollback()
            raise
        else:
            db.commit()

    application.dependency_overrides[get_session] = session_override
    yield application
    application.dependency_overrides.clear()


def _superuser_role() -> Role:
    """A member of Role that the enum does not list (``list(Role)`` stays the eight real roles)
    and that only the ``client`` fixture's policy knows."""
    role = str.__new__(Role, "test-superuser")
    role._name_ = "TEST_SUPERUSER"
    role._value_ = "test-superuser"
    return role


SUPERUSER_ROLE = _superuser_role()
TEST_PASSWORD = "test password, long enough"


@pytest.fixture
def superuser_policy(monkeypatch: pytest.MonkeyPatch) -> Role:
    """Let the test-only role exist, do everything, see every site and every arm. The real roles
    keep their real permissions, so ``client_as`` users beside it are checked for real."""
    monkeypatch.setitem(Role._value2member_map_, SUPERUSER_ROLE.value, SUPERUSER_ROLE)
    for permission, roles in list(ROLE_PERMISSIONS.items()):
        monkeypatch.setitem(ROLE_PERMISSIONS, permission, roles | {SUPERUSER_ROLE})
    for module in (permissions_module, principal_module):  # principal.py imported the sets
        monkeypatch.setattr(module, "ALL_SITES_ROLES", ALL_SITES_ROLES | {SUPERUSER_ROLE})
        monkeypatch.setattr(module, "UNBLINDED_ROLES", UNBLINDED_ROLES | {SUPERUSER_ROLE})
    return SUPERUSER_ROLE


def bearer_headers(db: Session, user: User) -> dict[str, str]:
    _, token = tokens.issue(db, user, tokens.TokenKind.API)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(db: Session, api: FastAPI, superuser_policy: Role) -> Iterator[TestClient]:
    """The API as the test superuser (see the module docstring)."""
    user = users.create_user(
        db,
        username="tester",
        display_name="Test Client",
        role=superuser_policy,
        password=TEST_PASSWORD,
    )
    headers = bearer_headers(db, user)
    with TestClient(api, raise_server_exceptions=False, headers=headers) as test_client:
        yield test_client


@pytest.fixture
def anonymous_client(api: FastAPI) -> Iterator[TestClient]:
    """The API without credentials."""
    with TestClient(api, raise_server_exceptions=False) as test_client:
        yield test_client


ClientAs = Callable[..., TestClient]


@pytest.fixture
def client_as(db: Session, api: FastAPI) -> Iterator[ClientAs]:
    """``client_as(role, sites=[site], username=None)``: a TestClient signed in as a new user of
    that role, working at those sites, under the real permission table. The user is on the
    client as ``.user``."""
    numbers = itertools.count(1)
    with ExitStack() as stack:

        def make(
            role: Role | str, sites: Sequence[Site] = (), *, username: str | None = None
        ) -> TestClient:
            role = Role(role)
            name = username or f"{role.value.replace('_', '-')}-{next(numbers)}"
            user = users.create_user(
                db,
                username=name,
                display_name=name.replace("-", " ").title(),
                role=role,
                password=TEST_PASSWORD,
                site_ids=[site.id for site in sites],
            )
            test_client = TestClient(
                api, raise_server_exceptions=False, headers=bearer_headers(db, user)
            )
            stack.enter_context(test_client)
            test_client.user = user  # type: ignore[attr-defined]
            return test_client

        yield make


_CONFIGURED_LOGGERS = ("", "uvicorn", "uvicorn.access", "httpx", "alembic")


@pytest.fixture(autouse=True)
def process_logging() -> Iterator[None]:
    """Each test leaves the process's logging as it found it: a test that runs `vigil serve`
    in-process (app/logs.py configures logging) would otherwise leave a handler on its captured,
    later closed, stderr for every later test's log lines."""
    saved = []
    for name in _CONFIGURED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, list(logger.handlers), logger.propagate))
    yield
    for logger, level, handlers, propagate in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def cheap_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "password_hash", CHEAP_PASSWORD_HASH)


# --- a trial of two sites, for the tests of who sees what ----------------------------------------

T0 = datetime.fromisoformat("2026-02-02T08:00:00+00:00")  # when the dosing sessions started


def make_person(session: Session, username: str, role: Role, sites: Sequence[Site] = ()) -> User:
    """A user written straight to the tables: no password (nobody signs in with one here)."""
    user = User(
        username=username,
        display_name=username.replace("-", " ").title(),
        role=role.value,
        password_hash="!no-password",
    )
    session.add(user)
    session.flush()
    for site in sites:
        session.execute(insert(user_sites).values(user_id=user.id, site_id=site.id))
    return user


def _seed_reading(session: Session, dosing_session: DosingSession) -> tuple[VitalReading, bool]:
    return vitals.ingest_one(
        session,
        dosing_session,
        {
            "id": str(uuid.uuid4()),
            "measured_at": (T0 + timedelta(minutes=60)).isoformat(),
            "observations": [
                {"code": "SYSBP", "value": 150, "unit": "mmHg"},
                {"code": "DIABP", "value": 95, "unit": "mmHg"},
                {"code": "PULSE", "value": 104, "unit": "beats/min"},
            ],
        },
        "seed",
    )


def _site_with_records(session: Session, study: Study, code: str, number: str) -> SimpleNamespace:
    site = make_site(session, study, code)
    participant = make_participant(session, site, f"{number}-001", stage="randomised")
    therapist = make_person(session, f"therapist-{code.lower()}", Role.THERAPIST, [site])
    co_therapist = make_person(session, f"co-therapist-{code.lower()}", Role.THERAPIST, [site])
    dosing_session = make_dosing_session(session, participant, started_at=T0, initial_dose_mg=80)
    # The world holds exactly the alert made below: the engine's findings on this seed reading
    # (e.g. measurements overdue months after T0) are left out of it.
    with patch.object(vitals.evaluation, "judge_session", return_value=Judgment([], [], [])):
        reading, _ = _seed_reading(session, dosing_session)
    event = adverse_events.create(
        session,
        participant,
        AdverseEventCreate(
            verbatim_term="Headache",
            onset_at=T0 + timedelta(hours=2),
            severity="mild",
            relatedness="possible",
            expectedness="expected",
            action_taken="not_applicable",
            outcome="recovering",
        ),
    )
    screen = TypeAdapter(AssessmentCreate).validate_python(
        {
            "kind": "cssrs_screen",
            "administered_at": (T0 + timedelta(hours=9)).isoformat(),
            "recall_period": "since_last_visit",
            "wish_to_be_dead": False,
            "suicidal_thoughts": False,
            "suicidal_behaviour": False,
        }
    )
    note = notes.create(
        session,
        participant,
        NoteCreate(
            text="Calm through the session; spoke of the accident for the first time.",
            written_at=T0 + timedelta(hours=9),
            author_id=therapist.id,
        ),
    )
    visits = {visit.code: visit for visit in participants.visits_of(session, participant)}
    alert, _ = make_alert(session, dosing_session, found_at=T0 + timedelta(minutes=60))
    return SimpleNamespace(
        site=site,
        participant=participant,
        visits=visits,
        therapist=therapist,
        co_therapist=co_therapist,
        dosing_session=dosing_session,
        dose=session.scalars(select(Dose).where(Dose.dosing_session_id == dosing_session.id)).one(),
        reading=reading,
        adverse_event=event,
        assessment=assessments.create(session, participant, screen),
        note=note,
        alert=alert,
    )


def build_two_site_trial(session: Session) -> SimpleNamespace:
    """Study MAPP-T (the MDMA protocol) with sites S01 (``.a``) and S02 (``.b``); at each: a
    randomised participant with their visits, a dosing session in progress since T0 with its
    80 mg initial dose, a vital reading, an adverse event, a C-SSRS screen, a therapist's note,
    an open critical alert, and two therapists. Built through the services, so the audit trail
    holds it all."""
    version = load_protocol(session)
    study = make_study(session)
    return SimpleNamespace(
        version=version,
        study=study,
        a=_site_with_records(session, study, "S01", "01"),
        b=_site_with_records(session, study, "S02", "02"),
    )


@pytest.fixture
def two_sites(db: Session) -> SimpleNamespace:
    """build_two_site_trial in the test's transaction."""
    return build_two_site_trial(db)
