"""Schemathesis against a real server: every operation of /api/v1/openapi.json, called with data
generated from the document itself, as an admin and as a site coordinator, must answer no
server error and nothing the document does not describe (status, content type, headers, body).

The server runs on a fresh migrated database holding the demo study (app/demo/seed.py: two
sites, participants at every stage, a dosing session in progress, its doses, vitals, alerts,
notes, assessments and adverse events). Half of the generated path parameters are replaced by
ids of those records, so operations reach their real work rather than only their 404.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import migrations
from app.auth import passwords, tokens
from app.db import make_engine
from app.demo.seed import seed_demo
from app.models import (
    AdverseEvent,
    Alert,
    Assessment,
    Dose,
    DosingSession,
    Participant,
    ProtocolVersion,
    Site,
    Study,
    TherapistNote,
    User,
    Visit,
    VitalReading,
)
from tests.conftest import BACKENDS, CHEAP_PASSWORD_HASH
from tests.live_server import live_server

pytestmark = pytest.mark.slow
ROLES = ("admin", "coordinator")
EXAMPLES_PER_OPERATION = 8
# positive_data_acceptance expects every schema-valid request to succeed; Vigil's rules go beyond
# what a schema can say (a cursor is one it issued, a dose within the protocol's limits, a time
# not in the future), and refusing those with a 422 is the documented answer.
EXCLUDED_CHECKS = [positive_data_acceptance]


@dataclass(frozen=True)
class World:
    backend: str
    base: str
    tokens: dict[str, str]  # username: bearer token
    ids: dict[str, str]  # path parameter name: the id of a seeded record


def _first(session: Session, model: Any, *where: Any) -> str:
    return str(session.scalars(select(model.id).where(*where).limit(1)).one())


def _seed(url: str) -> tuple[dict[str, str], dict[str, str]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            session.info["actor"] = "test"
            seed_demo(session)
            made = {}
            for username in ROLES:
                user = session.scalars(select(User).where(User.username == username)).one()
                _, made[username] = tokens.issue(session, user, tokens.TokenKind.API)
            # a token that is nobody's credential here: the one the fuzzer may revoke
            admin = session.scalars(select(User).where(User.username == "admin")).one()
            spare, _ = tokens.issue(session, admin, tokens.TokenKind.API, label="spare")
            ids = {
                "study_id": _first(session, Study),
                "site_id": _first(session, Site),
                "participant_id": _first(session, Participant),
                "visit_id": _first(session, Visit),
                "dosing_session_id": _first(
                    session, DosingSession, DosingSession.status == "in_progress"
                ),
                "dose_id": _first(session, Dose),
                "reading_id": _first(session, VitalReading),
                "event_id": _first(session, AdverseEvent),
                "alert_id": _first(session, Alert),
                "assessment_id": _first(session, Assessment),
                "note_id": _first(session, TherapistNote),
                "version_id": _first(session, ProtocolVersion),
                "user_id": _first(session, User, User.username == "therapist1"),
                "device_id": _first(session, User, User.role == "device"),
                "token_id": str(spare.id),
                "entity_type": "participants",
            }
            ids["entity_id"] = ids["participant_id"]
            session.commit()
    finally:
        engine.dispose()
    return made, ids


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[World]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "password_hash", CHEAP_PASSWORD_HASH)
        made, ids = _seed(url)
    with live_server(url) as base:
        yield World(backend=request.param, base=base, tokens=made, ids=ids)


@pytest.fixture(params=ROLES)
def caller(request: pytest.FixtureRequest, world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[request.param]}"}


def _with_seeded_ids(ids: dict[str, str]) -> Any:
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        seeded = {name: ids.get(name, value) for name, value in path_parameters.items()}
        return st.sampled_from([path_parameters, seeded])

    return flatmap_path_parameters


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
def test_every_operation_answers_as_documented(world: World, caller: dict[str, str], mode):
    schema = schemathesis.openapi.from_url(f"{world.base}/openapi.json")
    schema.hook(_with_seeded_ids(world.ids))
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=caller, excluded_checks=EXCLUDED_CHECKS)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # it has no input to spoil
        except (AssertionError, BaseExceptionGroup) as failure:  # all operations', together
            failures.append(f"{operation.label}: {failure}")
    print(f"{calls} calls")
    assert not failures, "\n\n".join(failures)
