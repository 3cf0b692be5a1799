from fastapi import APIRouter, Depends, status

from app.assessments import service
from app.assessments.records import EnteredInError
from app.assessments.schemas import (
    AssessmentCreate,
    AssessmentKind,
    AssessmentPage,
    AssessmentRead,
    BlindingGuessRead,
    CssrsScreenRead,
)
from app.auth.deps import Authorize, ScopedAssessment, ScopedParticipant
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import Assessment as AssessmentRow
from app.pagination import PageDep, paginate
from app.permissions import Permission

router = APIRouter(tags=["assessments"], route_class=CheckedRoute)


@router.post(
    "/participants/{participant_id}/assessments",
    response_model=AssessmentRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(Authorize(Permission.ASSESSMENT_WRITE))],
)
def create_assessment(
    session: SessionDep, participant: ScopedParticipant, data: AssessmentCreate
) -> CssrsScreenRead | BlindingGuessRead:
    """Record a C-SSRS screen or a blinding guess; the server keeps when it received it."""
    return service.present(service.create(session, participant, data))


@router.get(
    "/participants/{participant_id}/assessments",
    response_model=AssessmentPage,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def list_assessments(
    session: SessionDep,
    participant: ScopedParticipant,
    page: PageDep,
    kind: AssessmentKind | None = None,
    include_entered_in_error: bool = False,
) -> dict[str, object]:
    stmt = service.listing(
        participant.id, kind=kind, include_entered_in_error=include_entered_in_error
    )
    items, cursor = paginate(session, stmt, AssessmentRow.id, page)
    return {"items": service.present_all(items), "next_cursor": cursor}


@router.get(
    "/assessments/{assessment_id}",
    response_model=AssessmentRead,
    dependencies=[Depends(Authorize(Permission.PARTICIPANT_READ))],
)
def get_assessment(assessment: ScopedAssessment) -> CssrsScreenRead | BlindingGuessRead:
    return service.present(assessment)


@router.post(
    "/assessments/{assessment_id}/entered-in-error",
    response_model=AssessmentRead,
    dependencies=[Depends(Authorize(Permission.ASSESSMENT_WRITE))],
)
def enter_assessment_in_error(
    session: SessionDep, assessment: ScopedAssessment, data: EnteredInError
) -> CssrsScreenRead | BlindingGuessRead:
    """Mark the assessment entered in error: the row stays, flagged, with the reason audited."""
    return service.present(service.enter_in_error(session, assessment, data))
