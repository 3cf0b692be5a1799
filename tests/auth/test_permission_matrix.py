"""The permission matrix: every route of the app, called by every role, answers what the
permission table (app/permissions.py) says, and a route without exactly one declared policy
fails the suite.

One world of two sites is built once per module and database leg (tests/conftest.py's
build_two_site_trial plus one user of each role, at site S01 where the role has sites) inside a
transaction that is never committed; every call runs in a savepoint rolled back after it, so each
cell of the matrix sees the same untouched world.
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from app.alerts import visit_windows
from app.audit_api.endpoints import AUDITED_TABLES
from app.auth import tokens
from app.auth.deps import Policy
from app.auth.scope import RECORD_READ_PERMISSION
from app.clock import utcnow
from app.db import get_reader_engine, get_session, make_reader_engine
from app.exports.fhir.endpoints import export_reader
from app.exports.sdtm.endpoints import export_readers
from app.main import create_app
from app.models import NotificationDelivery, NotificationEvent, NotificationSubscription
from app.notifications import messages
from app.permissions import ALL_SITES_ROLES, ROLE_PERMISSIONS, Permission, Role, allows
from tests.conftest import T0, build_two_site_trial, make_person

API = "/api/v1"
APP = create_app()
OPEN = {Permission.PUBLIC, Permission.AUTHENTICATED}


# --- the routes and their declared policies -----------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as declared, e.g. /api/v1/participants/{participant_id}
    route: Any  # fastapi's RouteContext: the APIRoute as included, with its effective dependencies

    @property
    def name(self) -> str:
        return f"{self.method} {self.path.removeprefix(API)}"

    @property
    def policies(self) -> list[Permission]:
        return [
            d.dependency.permission
            for d in self.route.dependencies
            if isinstance(d.dependency, Policy)
        ]

    @property
    def permission(self) -> Permission:
        (permission,) = self.policies
        return permission

    @property
    def params(self) -> list[str]:
        return list(self.route.param_convertors)


def _routes(application: FastAPI, *, web: bool = False) -> list[Route]:
    """Every API route of the app (walking app.routes through the included routers), without
    FastAPI's own documentation routes, which are plain Starlette routes; with ``web``, the
    web client's pages instead (app/web: tests/web checks their policies)."""
    found = []
    for context in iter_route_contexts(application.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        if context.original_route.endpoint.__module__.startswith("app.web.") != web:
            continue
        for method in sorted(context.methods):
            found.append(Route(method, context.path, context))
    return found


ROUTES = _routes(APP)
ROLES = list(Role)


def _policies(dependant: Dependant) -> list[Policy]:
    found = [dependant.call] if isinstance(dependant.call, Policy) else []
    for sub in dependant.dependencies:
        found += _policies(sub)
    return found


def test_the_app_has_the_routes_the_matrix_walks():
    names = {route.name for route in ROUTES}
    assert len(ROUTES) >= 57
    assert {
        "GET /health",
        "GET /healthz",
        "GET /readyz",
        "GET /participants/{participant_id}",
        "GET /audit-records",
    } <= names


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_every_route_declares_exactly_one_policy(route: Route):
    """One policy in the decorator's dependencies (readable by this test), and none hidden
    elsewhere in the route's dependency tree."""
    assert len(route.policies) == 1, f"{route.name} declares {route.policies or 'no policy'}"
    assert len(_policies(route.route.dependant)) == 1, f"{route.name}: a second policy"


# --- the permission table against DESIGN.md section 2 -------------------------------------------


def _allowed(role: Role) -> list[Route]:
    return [
        r for r in ROUTES if r.permission not in OPEN and role in ROLE_PERMISSIONS[r.permission]
    ]


def test_the_table_names_every_permission_and_only_real_roles():
    assert set(ROLE_PERMISSIONS) == set(Permission)
    for roles in ROLE_PERMISSIONS.values():
        assert roles <= set(Role)


def test_the_whole_audit_trail_is_read_only_by_roles_that_see_every_site():
    assert ROLE_PERMISSIONS[Permission.AUDIT_READ] <= ALL_SITES_ROLES


def test_every_audited_table_says_which_permission_reads_its_history():
    assert set(RECORD_READ_PERMISSION) == set(AUDITED_TABLES)


def test_a_device_posts_vitals_and_lists_its_sites_sessions():
    assert {r.name for r in _allowed(Role.DEVICE)} == {
        "GET /devices/me/dosing-sessions",
        "POST /dosing-sessions/{dosing_session_id}/vital-readings",
        "POST /dosing-sessions/{dosing_session_id}/vital-readings/batch",
        "POST /fhir/Observation",
        "POST /fhir",
    }


def test_the_sponsor_and_the_medical_monitor_only_read_trial_data():
    for role in (Role.SPONSOR, Role.MEDICAL_MONITOR):
        writes = [r.name for r in _allowed(role) if r.method != "GET"]
        if role is Role.MEDICAL_MONITOR:
            # The monitor receives the critical alerts nobody acknowledged in time (DESIGN.md
            # section 4) and responds to them; alerts are not trial data it could change. It
            # codes adverse events in MedDRA: a classification beside the site's record that
            # changes none of what the site recorded (app/permissions.py, AE_CODE).
            beside = {Permission.ALERT_RESPOND, Permission.AE_CODE}
            writes = [name for name in writes if _permission_of(name) not in beside]
        assert writes == [], role


def _permission_of(name: str) -> Permission:
    (route,) = [r for r in ROUTES if r.name == name]
    return route.permission


def test_the_admin_manages_the_system_not_the_trial_data():
    clinical = ("/participants", "/visits", "/dosing-sessions", "/doses", "/vital-readings",
                "/adverse-events", "/assessments", "/notes")  # fmt: skip
    # Which protocol version a participant is under is the admin's protocol-version management
    # (DESIGN.md section 2): moving one to an amendment, with the re-consent date.
    protocol_versions = {"POST /participants/{participant_id}/amendment"}
    for route in _allowed(Role.ADMIN):
        if route.name in protocol_versions:
            continue
        assert not route.name.split(" ")[1].startswith(clinical), route.name


def test_only_the_site_clinician_unblinds_in_an_emergency():
    assert ROLE_PERMISSIONS[Permission.EMERGENCY_UNBLIND] == {Role.CLINICIAN}
    assert Role.CLINICIAN not in ALL_SITES_ROLES


# --- the world the matrix runs in ---------------------------------------------------------------

# Which path parameters hold a record of a site: the ones a site-S01 caller gets 404 for when
# they name the site-S02 record.
SITE_SCOPED_PARAMS = {
    "site_id",
    "participant_id",
    "visit_id",
    "dosing_session_id",
    "dose_id",
    "reading_id",
    "observation_id",
    "event_id",
    "assessment_id",
    "note_id",
    "alert_id",
    "entity_id",
}


@dataclass
class World:
    connection: Connection
    trial: SimpleNamespace
    users: dict[Role, Any]
    headers: dict[Role, dict[str, str]]
    token_ids: dict[Role, uuid.UUID]

    def params(self, role: Role | None, site: str = "a") -> dict[str, str]:
        """A value for every path parameter of the app: the records of one site."""
        records = getattr(self.trial, site)
        values = {
            "study_id": self.trial.study.id,
            "version_id": self.trial.version.id,
            "site_id": records.site.id,
            "participant_id": records.participant.id,
            "visit_id": records.visits["PREP1"].id,
            "dosing_session_id": records.dosing_session.id,
            "dose_id": records.dose.id,
            "reading_id": records.reading.id,
            "observation_id": f"{records.reading.id}-pulse",  # the FHIR view of the reading
            "event_id": records.adverse_event.id,
            "assessment_id": records.assessment.id,
            "note_id": records.note.id,
            "alert_id": (
                records.alert.id
                if role is None or allows(role, Permission.CLINICAL_ALERT_READ)
                else records.visit_alert.id
            ),
            "entity_type": "participants",
            "entity_id": records.participant.id,
            "user_id": self.users[Role.COORDINATOR].id,
            "device_id": self.users[Role.DEVICE].id,
            "subscription_id": self.trial.notifications.subscription_id,
            "delivery_id": self.trial.notifications.delivery_id,
            "token_id": self.token_ids[role] if role else uuid.uuid4(),
            "domain": "vs",
            "file_format": "csv",
            "resource_type": "ResearchSubject",
            "study_code": self.trial.study.code,
            "code": self.trial.study.code,
        }
        return {key: str(value) for key, value in values.items()}


def _dead_letter(session: Session, alert: Any) -> SimpleNamespace:
    """A webhook subscription and a delivery to it that every attempt failed for."""
    subscription = NotificationSubscription(
        channel="webhook",
        target="https://hooks.example.org/vigil",
        secret=messages.new_secret(),
        event_types=["alert.opened"],
    )
    session.add(subscription)
    session.flush()
    event = NotificationEvent(
        id=uuid.uuid4(), type="alert.opened", alert_id=alert.id, created_at=T0, payload={}
    )
    session.add(event)
    session.flush()
    delivery = NotificationDelivery(
        event_id=event.id,
        subscription_id=subscription.id,
        status="dead",
        attempts=12,
        next_attempt_at=T0,
        created_at=T0,
        last_error="the receiver answered 500",
    )
    session.add(delivery)
    session.flush()
    return SimpleNamespace(subscription_id=subscription.id, delivery_id=delivery.id)


@pytest.fixture(scope="module")
def world(engine: Engine) -> Iterator[World]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    session.info["actor"] = "test"
    trial = build_two_site_trial(session)
    for records in (trial.a, trial.b):  # a visit alert for the roles that see no clinical one
        (records.visit_alert,) = visit_windows.flag_missed(
            session, records.visits["FU"].id, T0 + timedelta(days=400)
        )
    trial.notifications = _dead_letter(session, trial.a.alert)
    site_a = [trial.a.site]
    users, headers, token_ids = {}, {}, {}
    for role in ROLES:
        sites = [] if role in ALL_SITES_ROLES else site_a
        user = make_person(session, f"matrix-{role.value.replace('_', '-')}", role, sites)
        kind = tokens.TokenKind.DEVICE if role is Role.DEVICE else tokens.TokenKind.SESSION
        token, plaintext = tokens.issue(session, user, kind, ttl=timedelta(hours=2))
        users[role], token_ids[role] = user, token.id
        headers[role] = {"Authorization": f"Bearer {plaintext}"}
    session.commit()  # a savepoint of the outer transaction, which is never committed
    session.close()
    yield World(connection, trial, users, headers, token_ids)
    outer.rollback()
    connection.close()


@pytest.fixture(scope="module")
def http(database_url: str) -> Iterator[TestClient]:
    """The app; its readiness probe reads the (migrated) test database on its own connection."""
    probe_engine = make_reader_engine(database_url)
    APP.dependency_overrides[get_reader_engine] = lambda: probe_engine
    with TestClient(APP, raise_server_exceptions=False) as client:
        yield client
    APP.dependency_overrides.clear()
    probe_engine.dispose()


def call(world: World, http: TestClient, route: Route, role: Role | None, site: str = "a"):
    """One request in a savepoint that is rolled back afterwards."""
    savepoint = world.connection.begin_nested()
    session = Session(
        bind=world.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )

    def session_override() -> Iterator[Session]:
        session.info["actor"] = "anonymous"
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        else:
            session.commit()

    def reader_override() -> Iterator[Session]:
        yield session

    APP.dependency_overrides[get_session] = session_override
    APP.dependency_overrides[export_readers] = lambda: lambda: nullcontext(session)
    APP.dependency_overrides[export_reader] = reader_override
    unknown = set(route.params) - set(world.params(role))
    assert not unknown, f"{route.name}: give the matrix a value for {unknown} in World.params"
    url = route.path.format(**world.params(role, site))
    body = BODIES.get(route.name, lambda _w: {})(world) if route.method != "GET" else None
    headers = {**(world.headers[role] if role else {}), **HEADERS.get(route.name, {})}
    try:
        query = QUERIES.get(route.name, lambda _w: {})(world)
        return http.request(route.method, url, json=body, params=query, headers=headers)
    finally:
        session.close()
        savepoint.rollback()


# Minimal valid bodies for the routes that take one, so an allowed caller gets through.
def _now(minutes: float = 0) -> str:
    return (utcnow() + timedelta(minutes=minutes)).isoformat()


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _reading(_w: World) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": _at(90),
        "observations": [{"code": "PULSE", "value": 96, "unit": "beats/min"}],
    }


REASON = {"reason": "Recorded against the wrong participant"}
BODIES: dict[str, Callable[[World], dict[str, Any]]] = {
    "POST /studies": lambda w: {
        "code": "MAPP-N",
        "name": "New study",
        "protocol_key": w.trial.version.protocol_key,
    },
    "POST /studies/{study_id}/sites": lambda w: {"code": "S09", "name": "Site S09"},
    "POST /studies/{study_id}/participants": lambda w: {
        "site_id": str(w.trial.a.site.id),
        "subject_id": "01-900",
        "sex": "F",
        "age_years": 40,
        "consented_on": "2026-01-02",
    },
    "POST /participants/{participant_id}/enrol": lambda w: {"enrolled_on": "2026-01-05"},
    "POST /participants/{participant_id}/withdraw": lambda w: {
        "reason_code": "participant_decision"
    },
    "POST /participants/{participant_id}/screen-failure": lambda w: {
        "reason_code": "inclusion_criteria_not_met"
    },
    "POST /visits/{visit_id}/reschedule": lambda w: {
        "scheduled_on": w.trial.a.visits["PREP1"].window_end_on.isoformat(),
        "reason": "Participant travelling",
    },
    "POST /visits/{visit_id}/outcome": lambda w: {"status": "missed", "reason": "Snowstorm"},
    "POST /participants/{participant_id}/dosing-sessions": lambda w: {
        "visit_id": str(w.trial.a.visits["EXP2"].id)
    },
    "POST /dosing-sessions/{dosing_session_id}/start": lambda w: {"started_at": _now()},
    "POST /dosing-sessions/{dosing_session_id}/therapist-presence": lambda w: {
        "lead_therapist_id": str(w.trial.a.therapist.id),
        "co_therapist_id": str(w.trial.a.co_therapist.id),
        "present_at": _at(5),
        "reason": "both therapists were with the participant; the tablet was offline",
    },
    "POST /dosing-sessions/{dosing_session_id}/end": lambda w: {
        "ended_at": _at(480),
        "end_reason": "vitals not yet back at baseline; participant transferred to the ward",
    },
    "POST /dosing-sessions/{dosing_session_id}/baseline-attestation": lambda w: {
        "attested_by_id": str(w.trial.a.therapist.id),
        "attested_at": _at(470),
    },
    "POST /dosing-sessions/{dosing_session_id}/doses": lambda w: {
        "kind": "supplemental",
        "amount_mg": 40,
        "administered_at": _at(150),
    },
    "POST /doses/{dose_id}/entered-in-error": lambda w: REASON,
    "POST /dosing-sessions/{dosing_session_id}/vital-readings": _reading,
    "POST /dosing-sessions/{dosing_session_id}/vital-readings/batch": lambda w: {
        "readings": [_reading(w)]
    },
    "POST /vital-readings/{reading_id}/entered-in-error": lambda w: REASON,
    "POST /participants/{participant_id}/adverse-events": lambda w: {
        "verbatim_term": "Nausea",
        "onset_at": _at(60),
        "severity": "mild",
        "relatedness": "possible",
        "expectedness": "expected",
        "action_taken": "not_applicable",
        "outcome": "recovered",
        "end_at": _at(120),
    },
    "PATCH /adverse-events/{event_id}": lambda w: {"severity": "moderate", "reason": "Re-graded"},
    "POST /adverse-events/{event_id}/entered-in-error": lambda w: REASON,
    "PUT /adverse-events/{event_id}/coding": lambda w: {
        "meddra_version": "27.1",
        "llt": {"term": "Nausea", "code": "10028813"},
        "pt": {"term": "Nausea", "code": "10028813"},
        "hlt": {"term": "Nausea and vomiting symptoms", "code": "10028817"},
        "hlgt": {"term": "Gastrointestinal signs and symptoms", "code": "10018012"},
        "soc": {"term": "Gastrointestinal disorders", "code": "10017947"},
        "reason": "Coded against MedDRA 27.1",
    },
    "POST /participants/{participant_id}/assessments": lambda w: {
        "kind": "cssrs_screen",
        "administered_at": _at(600),
        "recall_period": "since_last_visit",
        "wish_to_be_dead": False,
        "suicidal_thoughts": False,
        "suicidal_behaviour": False,
    },
    "POST /assessments/{assessment_id}/entered-in-error": lambda w: REASON,
    "POST /participants/{participant_id}/notes": lambda w: {
        "text": "Integration: sleeping better.",
        "written_at": _now(-60),
        "author_id": str(w.trial.a.therapist.id),
    },
    "PATCH /notes/{note_id}": lambda w: {"text": "Corrected text.", "reason": "Typo in the text"},
    "POST /notes/{note_id}/entered-in-error": lambda w: REASON,
    "POST /alerts/{alert_id}/acknowledge": lambda w: {"note": "Seen; rechecking in 5 minutes"},
    "POST /notification-subscriptions": lambda w: {
        "channel": "webhook",
        "url": "https://hooks.example.org/vigil-2",
    },
    "POST /notification-subscriptions/{subscription_id}/deactivate": lambda w: {},
    "POST /notification-deliveries/{delivery_id}/retry": lambda w: {},
    "POST /alerts/{alert_id}/resolve": lambda w: {"resolution": "BP back under 160 on recheck"},
}
# What the world's state refuses (409) to an allowed caller; every other route of ours answers
# 2xx. Routes not listed in BODIES and not ours (other domains' new routes) only have to let an
# allowed caller through: no 401, 403 or 404, no 5xx.
CONFLICTS = {
    "POST /participants/{participant_id}/enrol",  # already randomised
    "POST /participants/{participant_id}/randomise",
    "POST /participants/{participant_id}/screen-failure",
    "POST /participants/{participant_id}/complete",  # randomised, not in treatment
    "POST /dosing-sessions/{dosing_session_id}/start",  # in progress
    # the supplemental dose gate is closed: the world's open critical alert, no fresh readings
    "POST /dosing-sessions/{dosing_session_id}/doses",
    "GET /dosing-sessions/{dosing_session_id}/replay",  # the session is in progress, not ended
}
# Required query parameters, so an allowed caller gets past validation.
QUERIES: dict[str, Callable[[World], dict[str, str]]] = {
    "GET /exports/sdtm/{domain}.{file_format}": lambda w: {"study": w.trial.study.code},
    "GET /dosing-sessions/{dosing_session_id}/replay": lambda w: {
        "protocol_version_id": str(w.trial.version.id)
    },
    "GET /exports/fhir/{resource_type}.ndjson": lambda w: {"study": w.trial.study.code},
}
# An open alert stream never ends, so the matrix sends it a Last-Event-ID that is not an event id:
# the stream refuses that (422) only after the policy has let the caller through.
HEADERS = {"GET /alerts/stream": {"Last-Event-ID": "not-an-event-id"}}
REFUSED_INPUT = set(HEADERS)
OURS = set(BODIES) | CONFLICTS | {r.name for r in ROUTES if r.method == "GET"}


def _explain(route: Route, role: Role | None, response: Response) -> str:
    who = role.value if role else "nobody"
    return f"{route.name} as {who}: {response.status_code} {response.text[:300]}"


def _error_type(route: Route) -> str:
    """The FHIR input routes answer OperationOutcomes; every other route problem+json."""
    fhir = route.name.split(" ", 1)[1].startswith("/fhir")
    return "application/fhir+json" if fhir else "application/problem+json"


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "role"),
    [(route, role) for route in ROUTES for role in ROLES],
    ids=lambda v: v.name if isinstance(v, Route) else v.value,
)
def test_role_gets_what_the_table_says(world: World, http: TestClient, route: Route, role: Role):
    response = call(world, http, route, role)
    status = response.status_code
    if route.permission is not Permission.PUBLIC and role not in ROLE_PERMISSIONS[route.permission]:
        assert status == 403, _explain(route, role, response)
        assert response.headers["content-type"] == _error_type(route)
        return
    assert status not in {401, 403, 404, 405} and status < 500, _explain(route, role, response)
    if route.name in CONFLICTS:
        assert status == 409, _explain(route, role, response)
    elif route.name in REFUSED_INPUT:
        assert status == 422, _explain(route, role, response)
    elif route.name in OURS:
        assert 200 <= status < 300, _explain(route, role, response)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_no_credentials_is_401_except_on_public_routes(
    world: World, http: TestClient, route: Route
):
    response = call(world, http, route, None)
    if route.permission is Permission.PUBLIC:
        assert response.status_code not in {401, 403}, _explain(route, None, response)
    else:
        assert response.status_code == 401, _explain(route, None, response)
        assert response.headers["content-type"] == _error_type(route)


def _other_site_cases() -> list[tuple[Route, Role]]:
    site_roles = [role for role in ROLES if role not in ALL_SITES_ROLES]
    return [
        (route, role)
        for route in ROUTES
        if SITE_SCOPED_PARAMS & set(route.params)
        for role in site_roles
        if role in ROLE_PERMISSIONS[route.permission]
    ]


@pytest.mark.parametrize(
    ("route", "role"),
    _other_site_cases(),
    ids=lambda v: v.name if isinstance(v, Route) else v.value,
)
def test_records_of_another_site_are_not_found(
    world: World, http: TestClient, route: Route, role: Role
):
    """A user of site S01 naming a record of site S02 gets 404, as if it did not exist."""
    response = call(world, http, route, role, site="b")
    assert response.status_code == 404, _explain(route, role, response)
    assert "S02" not in response.text and "02-001" not in response.text
