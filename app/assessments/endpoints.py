import uuid

from fastapi import APIRouter, status

from app.assessments import service
from app.assessments.records import EnteredInError
from app.assessments.schemas import (
    Assessment,
    AssessmentCreate,
    AssessmentKind,
    AssessmentPage,
    BlindingGuess,
    CssrsScreen,
)
from app.db import SessionDep
from app.models import Assessment as AssessmentRow
from app.pagination import PageDep, paginate
from app.participants import service as participants

router = APIRouter(tags=["assessments"])


@router.post(
    "/participants/{participant_id}/assessments",
    response_model=Assessment,
    status_code=status.HTTP_201_CREATED,
)
def create_assessment(
    session: SessionDep, participant_id: uuid.UUID, data: AssessmentCreate
) -> CssrsScreen | BlindingGuess:
    """Record a C-SSRS screen or a blinding guess; the server keeps when it received it."""
    assessment = service.create(session, participants.get(session, participant_id), data)
    return service.present(assessment)


@router.get("/participants/{participant_id}/assessments", response_model=AssessmentPage)
def list_assessments(
    session: SessionDep,
    participant_id: uuid.UUID,
    page: PageDep,
    kind: AssessmentKind | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    participants.get(session, participant_id)
    stmt = service.listing(
        participant_id, kind=kind, include_entered_in_error=include_entered_in_error
    )
    items, cursor = paginate(session, stmt, AssessmentRow.id, page)
    return {"items": service.present_all(items), "next_cursor": cursor}


@router.get("/assessments/{assessment_id}", response_model=Assessment)
def get_assessment(session: SessionDep, assessment_id: uuid.UUID) -> CssrsScreen | BlindingGuess:
    return service.present(service.get(session, assessment_id))


@router.post("/assessments/{assessment_id}/entered-in-error", response_model=Assessment)
def enter_assessment_in_error(
    session: SessionDep, assessment_id: uuid.UUID, data: EnteredInError
) -> CssrsScreen | BlindingGuess:
    """Mark the assessment entered in error: the row stays, flagged, with the reason audited."""
    assessment = service.enter_in_error(session, service.get(session, assessment_id), data)
    return service.present(assessment)
