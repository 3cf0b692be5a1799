"""The participants of the caller's sites, and one participant's page: status, the visit
schedule with its windows, dosing sessions and doses, adverse events, assessments, notes, and
the actions the caller's role allows (enrol, randomise, reschedule a visit, withdraw).

Everything goes through the API's own scope rules and services: a participant is loaded by the
API's ``ScopedParticipant`` (another site's is a 404), the list is narrowed as the API's is, the
arm leaves through ``participant_view`` (masked for a blinded caller), and an action calls the
service the API's route calls, in a savepoint: a refusal undoes what the service began and the
page is shown again with the message."""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.adverse_events import service as adverse_events
from app.assessments import service as assessments
from app.auth.blinding import MASKED
from app.auth.deps import Authorize, ScopedParticipant, ScopedVisit
from app.auth.scope import only_visible_sites
from app.checked_input import CheckedRoute, text_problem
from app.db import SessionDep
from app.dosing import views as dosing_views
from app.errors import InvalidInput, VigilError
from app.models import (
    AdverseEvent,
    Assessment,
    DosingSession,
    Participant,
    Site,
    TherapistNote,
    User,
    Visit,
)
from app.notes import service as notes
from app.pagination import PageDep, paginate
from app.participants import service
from app.participants.endpoints import participant_view
from app.participants.schemas import (
    Enrolment,
    ParticipantStatus,
    VisitReschedule,
    Withdrawal,
    WithdrawalReason,
)
from app.permissions import Permission
from app.time_bounds import today_at
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

S = ParticipantStatus
DONE = {  # what the page says after an action went through (?done=...)
    "enrolled": "Enrolled: the protocol's visit schedule is laid out below.",
    "randomised": "Randomised.",
    "withdrawn": "Withdrawn from the study.",
    "rescheduled": "The visit was rescheduled.",
}
REQUIRED = {  # what a missing field of an action's form is told
    "enrolled_on": "Give the date of enrolment.",
    "scheduled_on": "Give the new date.",
    "reason": "Give the reason for the change.",
    "reason_code": "Choose a coded reason.",
}
WITHDRAWAL_REASONS = [(reason.value, reason.value.replace("_", " ")) for reason in WithdrawalReason]


# --- the list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A participant as the list shows them: no arm in it, whoever reads."""

    id: uuid.UUID
    subject_id: str
    site: Site
    status: str
    next_visit: Visit | None
    today: date


def _chosen_site(viewer: Viewer, value: str) -> Site | None:
    if not value:
        return None
    for site in viewer.sites:
        if str(site.id) == value:
            return site
    message = "not one of your sites"
    raise InvalidInput(f"site: {message}", errors=[{"field": "site", "message": message}])


def _chosen_status(value: str) -> ParticipantStatus | None:
    if not value:
        return None
    try:
        return ParticipantStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in ParticipantStatus)
        message = f"not a participant status (one of {known})"
        raise InvalidInput(
            f"status: {message}", errors=[{"field": "status", "message": message}]
        ) from None


def _next_visits(session: Session, participant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Visit]:
    """Each participant's first visit still scheduled, in the order of the schedule."""
    stmt = (
        select(Visit)
        .where(Visit.participant_id.in_(participant_ids), Visit.status == "scheduled")
        .order_by(Visit.sequence)
    )
    found: dict[uuid.UUID, Visit] = {}
    for visit in session.scalars(stmt):
        found.setdefault(visit.participant_id, visit)
    return found


@router.get("/participants", dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))])
def participant_list(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    page: PageDep,
    site: str = "",
    status: str = "",
) -> HTMLResponse:
    """The participants of the caller's sites (every site for the study-wide roles), by
    subject id, as GET /api/v1/participants narrows them; filtered by site and status."""
    chosen_site, chosen_status = _chosen_site(viewer, site), _chosen_status(status)
    stmt = only_visible_sites(select(Participant), viewer.principal, Participant.site_id)
    if chosen_site is not None:
        stmt = stmt.where(Participant.site_id == chosen_site.id)
    if chosen_status is not None:
        stmt = stmt.where(Participant.status == chosen_status.value)
    rows, cursor = paginate(session, stmt, Participant.id, page, order_by=[Participant.subject_id])
    sites = {
        s.id: s for s in session.scalars(select(Site).where(Site.id.in_({r.site_id for r in rows})))
    }
    upcoming = _next_visits(session, [row.id for row in rows])
    todays = {site_id: today_at(s.timezone).at for site_id, s in sites.items()}
    listed = [
        Listed(
            id=row.id,
            subject_id=row.subject_id,
            site=sites[row.site_id],
            status=row.status,
            next_visit=upcoming.get(row.id),
            today=todays[row.site_id],
        )
        for row in rows
    ]
    more = None
    if cursor is not None:
        query = {"site": site, "status": status, "cursor": cursor}
        more = "/participants?" + urlencode({k: v for k, v in query.items() if v})
    return render(
        request,
        "participants.html",
        viewer=viewer,
        nav="participants",
        participants=listed,
        sites=viewer.sites,
        statuses=[s.value for s in ParticipantStatus],
        chosen_site=chosen_site,
        chosen_status=chosen_status.value if chosen_status else "",
        more=more,
    )


# --- one participant ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An action refused: the form it came from (and the visit, for a reschedule), what it
    is told at its top and beside each field, and what the user had typed."""

    action: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    visit_id: uuid.UUID | None = None

    def of(self, action: str, visit_id: uuid.UUID | None = None) -> "Refusal | None":
        """This refusal if it belongs to that form, else None (for the template)."""
        return self if self.action == action and self.visit_id == visit_id else None


def _invalid(action: str, values: dict[str, str], exc: ValidationError, **kw: Any) -> Refusal:
    fields: dict[str, str] = {}
    general: list[str] = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        text = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            text = REQUIRED.get(name, "Required.")
        if name in values:
            fields.setdefault(name, text)
        else:
            general.append(text)
    message = " ".join(["Not done: check the form.", *general])
    return Refusal(action, message, fields, values, **kw)


def _refused(action: str, values: dict[str, str], exc: VigilError, **kw: Any) -> Refusal:
    fields = {
        str(error["field"]): str(error["message"])
        for error in exc.errors or []
        if error.get("field") in values
    }
    return Refusal(action, f"Not done: {exc.detail}", fields, values, **kw)


def _names(session: Session, user_ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    ids = {user_id for user_id in user_ids if user_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}


def _participant_page(
    session: Session,
    request: Request,
    viewer: Viewer,
    participant: Participant,
    *,
    status_code: int = 200,
    refusal: Refusal | None = None,
    done: str | None = None,
) -> HTMLResponse:
    view = participant_view(session, viewer.principal, participant)  # the arm, masked or audited
    site = session.get_one(Site, participant.site_id)
    visits = service.visits_of(session, participant)
    dosing_sessions = []
    if viewer.may(Permission.SESSION_READ):
        stmt = (
            select(DosingSession)
            .join(Visit, Visit.id == DosingSession.visit_id)
            .where(DosingSession.participant_id == participant.id)
            .order_by(Visit.sequence)
        )
        dosing_sessions = dosing_views.present_many(session, session.scalars(stmt).all())
    events = session.scalars(
        adverse_events.listing(participant_id=participant.id).order_by(AdverseEvent.onset_at)
    ).all()
    given = session.scalars(
        assessments.listing(participant.id).order_by(Assessment.administered_at)
    ).all()
    written = []
    if viewer.may(Permission.NOTE_READ):
        stmt_notes = notes.listing(participant.id).order_by(TherapistNote.written_at)
        written = notes.present_all(session, session.scalars(stmt_notes).all())
    current = S(participant.status)
    may_write = viewer.may(Permission.PARTICIPANT_WRITE)
    actions = {
        "enrol": may_write and S.ENROLLED in service.TRANSITIONS[current],
        "randomise": viewer.may(Permission.RANDOMISE)
        and S.RANDOMISED in service.TRANSITIONS[current],
        "withdraw": may_write and S.WITHDRAWN in service.TRANSITIONS[current],
        "reschedule": viewer.may(Permission.SESSION_PLAN),
    }
    return render(
        request,
        "participant.html",
        status_code,
        viewer=viewer,
        nav="participants",
        participant=view,
        arm=view.arm_code if view.arm_code not in (None, MASKED) else None,
        site=site,
        today=today_at(site.timezone).at,
        visits=visits,
        dosing_sessions=dosing_sessions,
        adverse_events=adverse_events.present_all(session, events),
        assessments=assessments.present_all(given),
        notes=written,
        names=_names(session, {view.unblinded_by_id, *(note.author_id for note in written)}),
        actions=actions,
        may_record_adverse_event=viewer.may(Permission.AE_WRITE),
        may_write_note=viewer.may(Permission.NOTE_WRITE),
        withdrawal_reasons=WITHDRAWAL_REASONS,
        refusal=refusal,
        # a refusal whose form the page no longer shows (randomised twice) is said on top
        stray_refusal=refusal if refusal and not _has_form(refusal, actions, visits) else None,
        notice=DONE.get(done or ""),
    )


def _has_form(refusal: Refusal, actions: dict[str, bool], visits: list[Visit]) -> bool:
    if not actions.get(refusal.action):
        return False
    if refusal.visit_id is None:
        return True
    return any(v.id == refusal.visit_id and v.status == "scheduled" for v in visits)


@router.get(
    "/participants/{participant_id}",
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def participant_page(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    participant: ScopedParticipant,
    done: str = "",
) -> HTMLResponse:
    return _participant_page(session, request, viewer, participant, done=done)


def _act(
    session: Session,
    request: Request,
    viewer: Viewer,
    participant: Participant,
    action: str,
    values: dict[str, str],
    schema: type[BaseModel] | None,
    perform: Callable[[Any], object],
    done: str,
    visit: Visit | None = None,
) -> Response:
    """Check the form with the API's schema, call the service in a savepoint, and go back to
    the participant's page; a refusal shows the page again with the message and the values."""
    visit_id = visit.id if visit is not None else None
    # A form is checked as the API's JSON is (app/checked_input.py): no control characters.
    refused = {name: problem for name, v in values.items() if (problem := text_problem(v))}
    if refused:
        refusal = Refusal(action, "Not done: check the form.", refused, values, visit_id)
        return _participant_page(
            session, request, viewer, participant, status_code=422, refusal=refusal
        )
    data = None
    if schema is not None:
        try:
            data = schema.model_validate({k: v for k, v in values.items() if v != ""})
        except ValidationError as exc:
            refusal = _invalid(action, values, exc, visit_id=visit_id)
            return _participant_page(
                session, request, viewer, participant, status_code=422, refusal=refusal
            )
    try:
        with session.begin_nested():
            perform(data)
    except VigilError as exc:
        refusal = _refused(action, values, exc, visit_id=visit_id)
        return _participant_page(
            session, request, viewer, participant, status_code=exc.status_code, refusal=refusal
        )
    target = f"/participants/{participant.id}?done={done}"
    if visit is not None:
        target += f"#visit-{visit.code}"
    return RedirectResponse(target, status_code=303)


@router.post(
    "/participants/{participant_id}/enrol",
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def enrol(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    participant: ScopedParticipant,
    enrolled_on: Annotated[str, Form()] = "",
) -> Response:
    """Enrol a screened participant (the API's POST .../enrol): the visit schedule is laid out."""
    return _act(
        session,
        request,
        viewer,
        participant,
        "enrol",
        {"enrolled_on": enrolled_on},
        Enrolment,
        lambda data: service.enrol(session, participant, data),
        "enrolled",
    )


@router.post(
    "/participants/{participant_id}/randomise",
    dependencies=[Depends(Authorize(Permission.RANDOMISE))],
)
def randomise(
    session: SessionDep, request: Request, viewer: CurrentViewer, participant: ScopedParticipant
) -> Response:
    """Allocate the next arm of the site's sequence (the API's POST .../randomise); the page
    shows the arm only to a caller the API would show it to."""
    return _act(
        session,
        request,
        viewer,
        participant,
        "randomise",
        {},
        None,
        lambda _: service.randomise(session, participant),
        "randomised",
    )


@router.post(
    "/participants/{participant_id}/withdraw",
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def withdraw(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    participant: ScopedParticipant,
    reason_code: Annotated[str, Form()] = "",
    reason_text: Annotated[str, Form()] = "",
) -> Response:
    """Withdraw the participant with a coded reason and free text (the API's POST .../withdraw)."""
    return _act(
        session,
        request,
        viewer,
        participant,
        "withdraw",
        {"reason_code": reason_code, "reason_text": reason_text},
        Withdrawal,
        lambda data: service.withdraw(session, participant, data),
        "withdrawn",
    )


@router.post(
    "/visits/{visit_id}/reschedule",
    dependencies=[Depends(Authorize(Permission.SESSION_PLAN))],
)
def reschedule(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    visit: ScopedVisit,
    scheduled_on: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Move a scheduled visit to a new date, with the reason (the API's POST
    /visits/{id}/reschedule); a date outside the window is kept and flagged."""
    participant = session.get_one(Participant, visit.participant_id)
    return _act(
        session,
        request,
        viewer,
        participant,
        "reschedule",
        {"scheduled_on": scheduled_on, "reason": reason},
        VisitReschedule,
        lambda data: service.reschedule(session, visit, data),
        "rescheduled",
        visit=visit,
    )
