import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Depends, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import blinding
from app.auth.deps import Authorize, CurrentPrincipal, ScopedParticipant, ScopedStudy, ScopedVisit
from app.auth.principal import Principal
from app.auth.scope import only_visible_sites, referenced_site
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import Participant as ParticipantRow
from app.models import Visit as VisitRow
from app.pagination import Page, PageDep, paginate
from app.participants import service
from app.participants.schemas import (
    Completion,
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
    """The read shape of participants for this caller: arms masked for a blinded one; for an
    unblinded one, every arm shown is audited as a read."""
    views = []
    for row in rows:
        view = ParticipantRead.model_validate(row)
        if view.arm_code is not None:
            if principal.unblinded:
                blinding.audit_unblinded_read(session, "participants", str(row.id), ["arm_code"])
            else:
                view = view.model_copy(update={"arm_code": blinding.MASKED})
        views.append(view)
    return views


def participant_view(
    session: Session, principal: Principal, row: ParticipantRow
) -> ParticipantRead:
    return participant_views(session, principal, [row])[0]
