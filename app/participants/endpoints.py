import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import blinding
from app.auth.deps import Authorize, CurrentPrincipal, ScopedParticipant, ScopedStudy, ScopedVisit
from app.auth.principal import Principal
from app.auth.reauthentication import ReauthenticationFailed
from app.auth.scope import only_visible_sites, referenced_site
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import problem
from app.models import Participant as ParticipantRow
from app.models import Visit as VisitRow
from app.pagination import Page, PageDep, paginate
from app.participants import amendment, service, unblinding
from app.participants.schemas import (
    Amendment,
    Completion,
    EmergencyUnblinding,
    Enrolment,
    ParticipantCreate,
    ParticipantRead,
    ParticipantStatus,
    ScreenFailure,
    VisitOutcome,
    VisitRead,
    VisitReschedule,
    Withdrawal,
)
from app.permissions import Permission

router = APIRouter(tags=["participants"], route_class=CheckedRoute)

# Every participant leaves through participant_view(s): the arm is masked for blinded
# callers, and an unblinded caller's read of it is audited.


@router.post(
    "/studies/{study_id}/participants",
    response_model=ParticipantRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def create_participant(
    session: SessionDep, principal: CurrentPrincipal, study: ScopedStudy, data: ParticipantCreate
) -> ParticipantRead:
    """Register a participant at one of the caller's sites of the study."""
    referenced_site(session, principal, data.site_id, study=study, field="site_id")
    return participant_view(session, principal, service.create(session, study, data))


@router.get(
    "/participants",
    response_model=Page[ParticipantRead],
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def list_participants(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    study_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    status: ParticipantStatus | None = None,
) -> dict[str, object]:
    """Participants of the caller's sites (of every site for the study-wide roles)."""
    stmt = only_visible_sites(select(ParticipantRow), principal, ParticipantRow.site_id)
    if study_id:
        stmt = stmt.where(ParticipantRow.study_id == study_id)
    if site_id:
        stmt = stmt.where(ParticipantRow.site_id == site_id)
    if status:
        stmt = stmt.where(ParticipantRow.status == status.value)
    items, cursor = paginate(session, stmt, ParticipantRow.id, page)
    return {"items": participant_views(session, principal, items), "next_cursor": cursor}


@router.get(
    "/participants/{participant_id}",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def get_participant(
    session: SessionDep, principal: CurrentPrincipal, participant: ScopedParticipant
) -> ParticipantRead:
    return participant_view(session, principal, participant)


@router.post(
    "/participants/{participant_id}/enrol",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def enrol(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: Enrolment,
) -> ParticipantRead:
    """Enrol a screened participant and generate the protocol's visit schedule (listed at
    `GET /participants/{id}/visits`)."""
    service.enrol(session, participant, data)
    return participant_view(session, principal, participant)


@router.post(
    "/participants/{participant_id}/randomise",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.RANDOMISE))],
)
def randomise(
    session: SessionDep, principal: CurrentPrincipal, participant: ScopedParticipant
) -> ParticipantRead:
    """Allocate the next arm of the site's sequence; the arm is masked unless the caller is
    unblinded, the coordinator who randomises included."""
    return participant_view(session, principal, service.randomise(session, participant))


@router.post(
    "/participants/{participant_id}/withdraw",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def withdraw(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: Withdrawal,
) -> ParticipantRead:
    row = service.withdraw(session, participant, data)
    return participant_view(session, principal, row)


@router.post(
    "/participants/{participant_id}/screen-failure",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def screen_fail(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: ScreenFailure,
) -> ParticipantRead:
    row = service.screen_fail(session, participant, data)
    return participant_view(session, principal, row)


@router.post(
    "/participants/{participant_id}/complete",
    response_model=ParticipantRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_WRITE))],
)
def complete(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: Completion,
) -> ParticipantRead:
    return participant_view(session, principal, service.complete(session, participant))


@router.post(
    "/participants/{participant_id}/amendment",
    response_model=ParticipantRead,
    responses={
        409: {"description": "the participant's part has ended, or a session is in progress"},
        422: {"description": "not a newer version of their protocol, or a bad re-consent date"},
    },
    dependencies=[Depends(Authorize(Permission.STUDY_MANAGE))],
)
def move_to_amendment(
    session: SessionDep,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: Amendment,
) -> ParticipantRead:
    """Move the participant to a newer version of their protocol, re-consented on the date
    given. Sessions created afterwards run under it; existing ones keep theirs. Visits still
    scheduled follow the new version's schedule; recorded ones are kept."""
    return participant_view(session, principal, amendment.amend(session, participant, data))


@router.post(
    "/participants/{participant_id}/unblinding",
    response_model=ParticipantRead,
    responses={
        401: {"description": "wrong password (the attempt is audited)"},
        403: {"description": "not a clinician, or not the caller's own username"},
        404: {"description": "no such participant at the caller's sites"},
        409: {"description": "not randomised, or unblinded already by another clinician"},
        429: {"description": "account locked after failed password checks"},
    },
    dependencies=[Depends(Authorize(Permission.EMERGENCY_UNBLIND))],
)
def unblind(
    session: SessionDep,
    request: Request,
    principal: CurrentPrincipal,
    participant: ScopedParticipant,
    data: EmergencyUnblinding,
) -> ParticipantRead | JSONResponse:
    """Emergency unblinding by a clinician of the participant's site, giving their username and
    password again: the answer shows them the arm, as every later read of this participant
    does for them (and nobody else). Everybody sees that the participant was unblinded, when,
    by whom and why; the medical monitor and the sponsor get a critical alert saying so. Done
    again by the same clinician, it shows the arm and changes nothing."""
    try:
        unblinding.unblind(session, principal, participant, data)
    except ReauthenticationFailed as refused:
        # Answered, not raised: the transaction commits with the audit record of the attempt.
        return problem(
            refused.status_code, refused.title, refused.detail, refused.slug, request.url.path
        )
    return participant_view(session, principal, participant)


@router.get(
    "/participants/{participant_id}/visits",
    response_model=Page[VisitRead],
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def list_visits(
    session: SessionDep, participant: ScopedParticipant, page: PageDep
) -> dict[str, object]:
    """The participant's visits in the order of the protocol's schedule."""
    stmt = select(VisitRow).where(VisitRow.participant_id == participant.id)
    items, cursor = paginate(session, stmt, VisitRow.id, page, order_by=[VisitRow.sequence])
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/visits/{visit_id}",
    response_model=VisitRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def get_visit(visit: ScopedVisit) -> VisitRow:
    return visit


@router.post(
    "/visits/{visit_id}/reschedule",
    response_model=VisitRead,
    dependencies=[Depends(Authorize(Permission.SESSION_PLAN))],
)
def reschedule(session: SessionDep, visit: ScopedVisit, data: VisitReschedule) -> VisitRow:
    """Move a visit; a date outside the protocol window is kept and flagged out_of_window."""
    return service.reschedule(session, visit, data)


@router.post(
    "/visits/{visit_id}/outcome",
    response_model=VisitRead,
    dependencies=[Depends(Authorize(Permission.SESSION_PLAN))],
)
def record_outcome(session: SessionDep, visit: ScopedVisit, data: VisitOutcome) -> VisitRow:
    return service.record_outcome(session, visit, data)


# --- what leaves: arms masked for blinded callers ------------------------------------------------


def participant_views(
    session: Session, principal: Principal, rows: Sequence[ParticipantRow]
) -> list[ParticipantRead]:
    """The read shape of participants for this caller: arms masked for a blinded one (but the
    arm of a participant they unblinded in an emergency); every arm shown is audited as a
    read."""
    views = []
    for row in rows:
        view = ParticipantRead.model_validate(row)
        if view.arm_code is not None:
            if blinding.sees_arm(principal, row.unblinded_by_id):
                blinding.audit_unblinded_read(session, "participants", str(row.id), ["arm_code"])
            else:
                view = view.model_copy(update={"arm_code": blinding.MASKED})
        views.append(view)
    return views


def participant_view(
    session: Session, principal: Principal, row: ParticipantRow
) -> ParticipantRead:
    return participant_views(session, principal, [row])[0]
