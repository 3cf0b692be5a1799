import uuid

from fastapi import APIRouter, status
from sqlalchemy import select

from app.db import SessionDep
from app.models import Participant as ParticipantRow
from app.models import Visit as VisitRow
from app.pagination import Page, PageDep, paginate
from app.participants import service
from app.participants.schemas import (
    Completion,
    Enrolment,
    Participant,
    ParticipantCreate,
    ParticipantStatus,
    ScreenFailure,
    Visit,
    VisitOutcome,
    VisitReschedule,
    Withdrawal,
)
from app.studies import service as studies

router = APIRouter(tags=["participants"])


@router.post(
    "/studies/{study_id}/participants",
    response_model=Participant,
    status_code=status.HTTP_201_CREATED,
)
def create_participant(
    session: SessionDep, study_id: uuid.UUID, data: ParticipantCreate
) -> ParticipantRow:
    return service.create(session, studies.get_study(session, study_id), data)


@router.get("/participants", response_model=Page[Participant])
def list_participants(
    session: SessionDep,
    page: PageDep,
    study_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    status: ParticipantStatus | None = None,
) -> dict[str, object]:
    stmt = select(ParticipantRow)
    if study_id:
        stmt = stmt.where(ParticipantRow.study_id == study_id)
    if site_id:
        stmt = stmt.where(ParticipantRow.site_id == site_id)
    if status:
        stmt = stmt.where(ParticipantRow.status == status.value)
    items, cursor = paginate(session, stmt, ParticipantRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get("/participants/{participant_id}", response_model=Participant)
def get_participant(session: SessionDep, participant_id: uuid.UUID) -> ParticipantRow:
    return service.get(session, participant_id)


@router.post("/participants/{participant_id}/enrol", response_model=list[Visit])
def enrol(session: SessionDep, participant_id: uuid.UUID, data: Enrolment) -> list[VisitRow]:
    """Enrol a screened participant and generate the protocol's visit schedule."""
    return service.enrol(session, service.get(session, participant_id), data)


@router.post("/participants/{participant_id}/randomise", response_model=Participant)
def randomise(session: SessionDep, participant_id: uuid.UUID) -> ParticipantRow:
    return service.randomise(session, service.get(session, participant_id))


@router.post("/participants/{participant_id}/withdraw", response_model=Participant)
def withdraw(session: SessionDep, participant_id: uuid.UUID, data: Withdrawal) -> ParticipantRow:
    return service.withdraw(session, service.get(session, participant_id), data)


@router.post("/participants/{participant_id}/screen-failure", response_model=Participant)
def screen_fail(
    session: SessionDep, participant_id: uuid.UUID, data: ScreenFailure
) -> ParticipantRow:
    return service.screen_fail(session, service.get(session, participant_id), data)


@router.post("/participants/{participant_id}/complete", response_model=Participant)
def complete(session: SessionDep, participant_id: uuid.UUID, data: Completion) -> ParticipantRow:
    return service.complete(session, service.get(session, participant_id))


@router.get("/participants/{participant_id}/visits", response_model=list[Visit])
def list_visits(session: SessionDep, participant_id: uuid.UUID) -> list[VisitRow]:
    return service.visits_of(session, service.get(session, participant_id))


@router.get("/visits/{visit_id}", response_model=Visit)
def get_visit(session: SessionDep, visit_id: uuid.UUID) -> VisitRow:
    return service.get_visit(session, visit_id)


@router.post("/visits/{visit_id}/reschedule", response_model=Visit)
def reschedule(session: SessionDep, visit_id: uuid.UUID, data: VisitReschedule) -> VisitRow:
    """Move a visit; a date outside the protocol window is kept and flagged out_of_window."""
    return service.reschedule(session, service.get_visit(session, visit_id), data)


@router.post("/visits/{visit_id}/outcome", response_model=Visit)
def record_outcome(session: SessionDep, visit_id: uuid.UUID, data: VisitOutcome) -> VisitRow:
    return service.record_outcome(session, service.get_visit(session, visit_id), data)
