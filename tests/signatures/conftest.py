"""A small trial with people to sign: two sites, a participant at each, an adverse event, a note
and an ended dosing session at site S01, and a bearer token per person."""

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.auth import tokens
from app.main import create_app
from app.models import DosingSession, Participant, Site
from app.notes import service as notes
from app.notes.schemas import NoteCreate
from app.permissions import Role
from app.protocols import service as protocols
from app.protocols.loader import load_protocol_file
from app.signatures.endpoints import router as signatures_router
from app.studies import service as studies
from app.studies.schemas import StudyCreate
from app.users.service import create_user
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import MDMA, make_participant, make_site

PROTOCOL = load_protocol_file(MDMA)  # parsed once, not once per test
PASSWORD = "a long password 123"
API = "/api/v1"


@pytest.fixture(scope="session")
def application():
    """The app, with the signature routes even before app/main.py includes them."""
    application = create_app()
    paths = {getattr(route, "path", None) for route in application.routes}
    if f"{API}/notes/{{note_id}}/signatures" not in paths:
        application.include_router(signatures_router, prefix=API)
    return application


@pytest.fixture
def client(anonymous_client: TestClient) -> TestClient:
    """No default credentials: every request here carries the token of the person acting."""
    return anonymous_client


def _person(db: Session, username: str, role: Role, site: Site) -> SimpleNamespace:
    user = create_user(
        db,
        username=username,
        display_name=f"Dr {username.title()}",
        role=role,
        password=PASSWORD,
        site_ids=[site.id],
    )
    _, token = tokens.issue(db, user, tokens.TokenKind.SESSION, ttl=timedelta(hours=1))
    return SimpleNamespace(
        user=user, username=username, headers={"Authorization": f"Bearer {token}"}
    )


def _adverse_event(db: Session, participant: Participant):
    data = AdverseEventCreate(
        verbatim_term="Headache",
        onset_at=datetime.fromisoformat("2026-02-02T09:15:00+00:00"),
        severity="mild",
        relatedness="possible",
        expectedness="expected",
        action_taken="not_applicable",
        outcome="recovering",
    )
    return adverse_events.create(db, participant, data)


def _ended(db: Session, participant: Participant) -> DosingSession:
    dosing_session = make_dosing_session(db, participant)
    dosing_session.status = "ended"
    dosing_session.ended_at = dosing_session.started_at + timedelta(hours=8)
    db.flush()
    return dosing_session


@pytest.fixture
def trial(db: Session) -> SimpleNamespace:
    version, _ = protocols.store(db, PROTOCOL)
    study = studies.create_study(
        db, StudyCreate(code="MAPP-T", name="Test study", protocol_key=version.protocol_key)
    )
    site, elsewhere = make_site(db, study), make_site(db, study, "S02")
    participant = make_participant(db, site, stage="enrolled")
    trial = SimpleNamespace(
        participant=participant,
        away_participant=make_participant(db, elsewhere, "02-001", stage="enrolled"),
        clinician=_person(db, "clinician", Role.CLINICIAN, site),
        colleague=_person(db, "colleague", Role.CLINICIAN, site),
        therapist=_person(db, "therapist", Role.THERAPIST, site),
        co_therapist=_person(db, "cotherapist", Role.THERAPIST, site),
        coordinator=_person(db, "coordinator", Role.COORDINATOR, site),
        away=_person(db, "away", Role.CLINICIAN, elsewhere),
    )
    trial.event = _adverse_event(db, participant)
    trial.note = notes.create(
        db,
        participant,
        NoteCreate(
            text="Participant calm; talked about her brother for the first time.",
            written_at=clock.utcnow() - timedelta(hours=1),
            author_id=trial.therapist.user.id,
        ),
    )
    trial.dosing_session = _ended(db, participant)
    return trial
