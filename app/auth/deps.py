"""The FastAPI dependencies every route uses: who is calling (resolved once per request from a
bearer token or the session cookie) and the route's declared policy (:class:`Authorize`)."""

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from starlette.concurrency import run_in_threadpool

from app import idempotency
from app.auth import device_clock, tokens
from app.auth.principal import Principal
from app.auth.scope import (
    RECORD_READ_PERMISSION,
    check_record_readable,
    load_in_scope,
    study_visible,
)
from app.clock import utcnow
from app.db import SessionDep
from app.errors import Forbidden, NotFound, VigilError
from app.models import (
    AccessToken,
    AdverseEvent,
    Alert,
    Assessment,
    Dose,
    DosingSession,
    Participant,
    Site,
    Study,
    TherapistNote,
    Visit,
    VitalReading,
)
from app.permissions import Permission, Role, allows
from app.wording import with_article

SESSION_COOKIE = "vigil_session"
CSRF_HEADER = "x-vigil-csrf"


class Unauthenticated(VigilError):
    status_code = 401
    title = "Unauthenticated"
    slug = "unauthenticated"


def credential(request: Request) -> tuple[str, bool] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


# A token's last_seen_at is kept to the minute. Writing it on every request made every request of
# one token (a bedside tablet posting for several sessions) wait for that token's row until the
# request before it had committed. On PostgreSQL, a request that finds the row locked (another
# request of the token is writing it now) leaves it to that one instead of queueing behind it.
LAST_SEEN_PRECISION = timedelta(minutes=1)


def _seen(session: Session, token: AccessToken, now: datetime, address: str | None) -> None:
    stale = token.last_seen_at is None or now - token.last_seen_at >= LAST_SEEN_PRECISION
    if not stale and token.last_seen_address == address:
        return
    if session.get_bind().dialect.name != "postgresql":
        token.last_seen_at, token.last_seen_address = now, address
        return
    free = (
        select(AccessToken.id)
        .where(AccessToken.id == token.id)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    written = session.execute(
        update(AccessToken)
        .where(AccessToken.id == free)
        .values(last_seen_at=now, last_seen_address=address),
        execution_options={"synchronize_session": False},
    )
    if written.rowcount:  # type: ignore[attr-defined]
        set_committed_value(token, "last_seen_at", now)
        set_committed_value(token, "last_seen_address", address)


def resolve_credential(
    session: Session, request: Request, plaintext: str
) -> tokens.Resolved | None:
    """:func:`tokens.resolve`, asked once per request and credential: a web request's idle
    guard (app/web/idle.py) and its authentication both need the sign-in behind its cookie."""
    known = getattr(request.state, "resolved_credential", None)
    if known is not None and known[0] == plaintext:
        return known[1]
    found = tokens.resolve(session, plaintext)
    request.state.resolved_credential = (plaintext, found)
    return found


def authenticate(session: Session, request: Request) -> Principal:
    """The caller of this request (resolved once, then kept on request.state)."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    found_credential = credential(request)
    if found_credential is None:
        raise Unauthenticated("sign in first: send 'Authorization: Bearer <token>'")
    plaintext, via_cookie = found_credential
    found = resolve_credential(session, request, plaintext)
    if found is None:
        raise Unauthenticated(tokens.why_refused(session, plaintext))
    token, user = found.token, found.user
    unsafe = request.method not in {"GET", "HEAD", "OPTIONS"}
    # The web client's forms carry a per-session token instead, checked by app/web/csrf.py.
    csrf_checked = request.headers.get(CSRF_HEADER) == "1" or getattr(
        request.state, "csrf_verified", False
    )
    if via_cookie and unsafe and not csrf_checked:
        raise Forbidden(f"a cookie-authenticated change needs the header {CSRF_HEADER}: 1")
    now = utcnow()
    _seen(session, token, now, request.client.host if request.client else None)
    # what a device's clock is off by, for the readings this request may carry
    session.info["device_clock"] = (
        device_clock.observe(session, user, found.device_clock, request.headers, now)
        if user.role == Role.DEVICE
        else None
    )
    principal = Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        site_ids=found.site_ids,
        token_id=token.id,
        via_cookie=via_cookie,
    )
    session.info["actor"] = principal.actor
    request.state.principal = principal
    return principal


async def current_principal(session: SessionDep, request: Request) -> Principal:
    """The caller, as the route's policy (``Authorize``, resolved first) found it: then on the
    event loop, without a hop to a worker thread; else authenticated in one."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    return await run_in_threadpool(authenticate, session, request)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class Policy:
    """A route's declared policy: ``dependencies=[Depends(Authorize(Permission.X))]`` on the
    decorator.

    The permission is kept on the dependency so the permission-matrix test can read every
    route's declared policy; a route without one fails that test.
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission


class Anyone(Policy):
    """No credentials and no database session: the health probes, which must answer at once
    however many requests wait for a turn at the database (app/db.py)."""

    def __init__(self) -> None:
        super().__init__(Permission.PUBLIC)

    def __call__(self) -> None:
        return None


class Authorize(Policy):
    """The caller's credentials (in the request's session), checked against the permission;
    then the request's Idempotency-Key, if it has one, claimed for the caller."""

    def __call__(self, session: SessionDep, request: Request) -> Principal | None:
        if self.permission is Permission.PUBLIC:
            return None
        principal = authenticate(session, request)
        if not allows(principal.role, self.permission):
            raise Forbidden(
                f"{with_article(principal.role.value)} may not do this ({self.permission.value})"
            )
        # a write sent with an Idempotency-Key: replayed, refused, or taken for this caller
        idempotency.claim(session, request, principal.user_id)
        return principal


# --- path ids: the scoped loaders ---------------------------------------------------------------


def participant_in_scope(
    session: SessionDep, principal: CurrentPrincipal, participant_id: uuid.UUID
) -> Participant:
    return load_in_scope(session, principal, Participant, participant_id, "participant")


def visit_in_scope(session: SessionDep, principal: CurrentPrincipal, visit_id: uuid.UUID) -> Visit:
    return load_in_scope(session, principal, Visit, visit_id, "visit")


def dosing_session_in_scope(
    session: SessionDep, principal: CurrentPrincipal, dosing_session_id: uuid.UUID
) -> DosingSession:
    return load_in_scope(session, principal, DosingSession, dosing_session_id, "dosing session")


def dose_in_scope(session: SessionDep, principal: CurrentPrincipal, dose_id: uuid.UUID) -> Dose:
    return load_in_scope(session, principal, Dose, dose_id, "dose")


def reading_in_scope(
    session: SessionDep, principal: CurrentPrincipal, reading_id: uuid.UUID
) -> VitalReading:
    return load_in_scope(session, principal, VitalReading, reading_id, "vital reading")


def adverse_event_in_scope(
    session: SessionDep, principal: CurrentPrincipal, event_id: uuid.UUID
) -> AdverseEvent:
    return load_in_scope(session, principal, AdverseEvent, event_id, "adverse event")


def assessment_in_scope(
    session: SessionDep, principal: CurrentPrincipal, assessment_id: uuid.UUID
) -> Assessment:
    return load_in_scope(session, principal, Assessment, assessment_id, "assessment")


def note_in_scope(
    session: SessionDep, principal: CurrentPrincipal, note_id: uuid.UUID
) -> TherapistNote:
    return load_in_scope(session, principal, TherapistNote, note_id, "note")


def alert_in_scope(session: SessionDep, principal: CurrentPrincipal, alert_id: uuid.UUID) -> Alert:
    return load_in_scope(session, principal, Alert, alert_id, "alert")


def site_in_scope(session: SessionDep, principal: CurrentPrincipal, site_id: uuid.UUID) -> Site:
    return load_in_scope(session, principal, Site, site_id, "site")


def study_in_scope(session: SessionDep, principal: CurrentPrincipal, study_id: uuid.UUID) -> Study:
    study = session.get(Study, study_id)
    if study is None or not study_visible(session, principal, study.id):
        raise NotFound(f"study {study_id} does not exist")
    return study


ScopedParticipant = Annotated[Participant, Depends(participant_in_scope)]
ScopedVisit = Annotated[Visit, Depends(visit_in_scope)]
ScopedDosingSession = Annotated[DosingSession, Depends(dosing_session_in_scope)]
ScopedDose = Annotated[Dose, Depends(dose_in_scope)]
ScopedReading = Annotated[VitalReading, Depends(reading_in_scope)]
ScopedAdverseEvent = Annotated[AdverseEvent, Depends(adverse_event_in_scope)]
ScopedAssessment = Annotated[Assessment, Depends(assessment_in_scope)]
ScopedNote = Annotated[TherapistNote, Depends(note_in_scope)]
ScopedAlert = Annotated[Alert, Depends(alert_in_scope)]
ScopedSite = Annotated[Site, Depends(site_in_scope)]
ScopedStudy = Annotated[Study, Depends(study_in_scope)]


# --- the audit history of one record ------------------------------------------------------------


def history_in_scope(
    session: SessionDep, principal: CurrentPrincipal, entity_type: str, entity_id: uuid.UUID
) -> tuple[str, uuid.UUID]:
    """The record whose history is asked for, checked like a read of the record itself;
    a reader of the whole audit trail (AUDIT_READ, every site) may read any history."""
    if entity_type not in RECORD_READ_PERMISSION:
        known = ", ".join(sorted(RECORD_READ_PERMISSION))
        raise NotFound(f"unknown record type {entity_type!r}; known: {known}")
    if not (principal.all_sites and allows(principal.role, Permission.AUDIT_READ)):
        check_record_readable(session, principal, entity_type, entity_id)
    return entity_type, entity_id


ScopedHistory = Annotated[tuple[str, uuid.UUID], Depends(history_in_scope)]
