import uuid

from fastapi import APIRouter, Depends, status

from app.adverse_events import coding, service
from app.adverse_events.schemas import (
    AdverseEventCreate,
    AdverseEventRead,
    AdverseEventUpdate,
    MeddraCoding,
)
from app.assessments.records import EnteredInError
from app.auth.deps import Authorize, CurrentPrincipal, ScopedAdverseEvent, ScopedParticipant
from app.auth.scope import only_visible_participants
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import AdverseEvent as AdverseEventRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission

router = APIRouter(tags=["adverse events"], route_class=CheckedRoute)


@router.post(
    "/participants/{participant_id}/adverse-events",
    response_model=AdverseEventRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.AE_WRITE))],
)
def create_adverse_event(
    session: SessionDep, participant: ScopedParticipant, data: AdverseEventCreate
) -> AdverseEventRead:
    """Record an adverse event; seriousness comes from its criteria, never from severity."""
    event = service.create(session, participant, data)
    return service.present(session, event)


@router.get(
    "/participants/{participant_id}/adverse-events",
    response_model=Page[AdverseEventRead],
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def list_participant_adverse_events(
    session: SessionDep,
    participant: ScopedParticipant,
    page: PageDep,
    serious: bool | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    stmt = service.listing(
        participant_id=participant.id,
        serious=serious,
        include_entered_in_error=include_entered_in_error,
    )
    items, cursor = paginate(session, stmt, AdverseEventRow.id, page)
    return {"items": service.present_all(session, items), "next_cursor": cursor}


@router.get(
    "/adverse-events",
    response_model=Page[AdverseEventRead],
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def list_adverse_events(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    serious: bool | None = None,
    coded: bool | None = None,
    participant_id: uuid.UUID | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    """Adverse events of the caller's sites (study-wide for the monitors), oldest recorded
    first; `serious=true` for SAEs, `coded=false` for the events still to code in MedDRA."""
    stmt = service.listing(
        participant_id=participant_id,
        serious=serious,
        coded=coded,
        include_entered_in_error=include_entered_in_error,
    )
    stmt = only_visible_participants(stmt, principal, AdverseEventRow.participant_id)
    items, cursor = paginate(session, stmt, AdverseEventRow.id, page)
    return {"items": service.present_all(session, items), "next_cursor": cursor}


@router.get(
    "/adverse-events/{event_id}",
    response_model=AdverseEventRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def get_adverse_event(session: SessionDep, event: ScopedAdverseEvent) -> AdverseEventRead:
    return service.present(session, event)


@router.patch(
    "/adverse-events/{event_id}",
    response_model=AdverseEventRead,
    dependencies=[Depends(Authorize(Permission.AE_WRITE))],
)
def correct_adverse_event(
    session: SessionDep, event: ScopedAdverseEvent, data: AdverseEventUpdate
) -> AdverseEventRead:
    """Correct the given fields; the audit trail keeps the old values and the reason."""
    return service.present(session, service.correct(session, event, data))


@router.post(
    "/adverse-events/{event_id}/entered-in-error",
    response_model=AdverseEventRead,
    dependencies=[Depends(Authorize(Permission.AE_WRITE))],
)
def enter_adverse_event_in_error(
    session: SessionDep, event: ScopedAdverseEvent, data: EnteredInError
) -> AdverseEventRead:
    """Mark the event entered in error: the row stays, flagged, with the reason audited."""
    return service.present(session, service.enter_in_error(session, event, data))


@router.put(
    "/adverse-events/{event_id}/coding",
    response_model=AdverseEventRead,
    dependencies=[Depends(Authorize(Permission.AE_CODE))],
)
def code_adverse_event(
    session: SessionDep, event: ScopedAdverseEvent, data: MeddraCoding
) -> AdverseEventRead:
    """Code the event in MedDRA (the whole hierarchy, from the coder's licensed dictionary), or
    re-code it; the audit trail keeps each earlier coding and the reason."""
    return service.present(session, coding.code(session, event, data))
