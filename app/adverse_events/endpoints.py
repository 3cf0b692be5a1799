import uuid

from fastapi import APIRouter, status

from app.adverse_events import service
from app.adverse_events.schemas import AdverseEvent, AdverseEventCorrection, AdverseEventCreate
from app.assessments.records import EnteredInError
from app.db import SessionDep
from app.models import AdverseEvent as AdverseEventRow
from app.pagination import Page, PageDep, paginate
from app.participants import service as participants

router = APIRouter(tags=["adverse events"])


@router.post(
    "/participants/{participant_id}/adverse-events",
    response_model=AdverseEvent,
    status_code=status.HTTP_201_CREATED,
)
def create_adverse_event(
    session: SessionDep, participant_id: uuid.UUID, data: AdverseEventCreate
) -> AdverseEvent:
    """Record an adverse event; seriousness comes from its criteria, never from severity."""
    event = service.create(session, participants.get(session, participant_id), data)
    return service.present(session, event)


@router.get("/participants/{participant_id}/adverse-events", response_model=Page[AdverseEvent])
def list_participant_adverse_events(
    session: SessionDep,
    participant_id: uuid.UUID,
    page: PageDep,
    serious: bool | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    participants.get(session, participant_id)
    stmt = service.listing(
        participant_id=participant_id,
        serious=serious,
        include_entered_in_error=include_entered_in_error,
    )
    items, cursor = paginate(session, stmt, AdverseEventRow.id, page)
    return {"items": service.present_all(session, items), "next_cursor": cursor}


@router.get("/adverse-events", response_model=Page[AdverseEvent])
def list_adverse_events(
    session: SessionDep,
    page: PageDep,
    serious: bool | None = None,
    participant_id: uuid.UUID | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    """Adverse events across participants, oldest recorded first; `serious=true` for SAEs."""
    stmt = service.listing(
        participant_id=participant_id,
        serious=serious,
        include_entered_in_error=include_entered_in_error,
    )
    items, cursor = paginate(session, stmt, AdverseEventRow.id, page)
    return {"items": service.present_all(session, items), "next_cursor": cursor}


@router.get("/adverse-events/{event_id}", response_model=AdverseEvent)
def get_adverse_event(session: SessionDep, event_id: uuid.UUID) -> AdverseEvent:
    return service.present(session, service.get(session, event_id))


@router.patch("/adverse-events/{event_id}", response_model=AdverseEvent)
def correct_adverse_event(
    session: SessionDep, event_id: uuid.UUID, data: AdverseEventCorrection
) -> AdverseEvent:
    """Correct the given fields; the audit trail keeps the old values and the reason."""
    event = service.correct(session, service.get(session, event_id), data)
    return service.present(session, event)


@router.post("/adverse-events/{event_id}/entered-in-error", response_model=AdverseEvent)
def enter_adverse_event_in_error(
    session: SessionDep, event_id: uuid.UUID, data: EnteredInError
) -> AdverseEvent:
    """Mark the event entered in error: the row stays, flagged, with the reason audited."""
    event = service.enter_in_error(session, service.get(session, event_id), data)
    return service.present(session, event)
