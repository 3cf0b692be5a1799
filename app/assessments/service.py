"""Assessments: C-SSRS screens (derived risk) and timestamped blinding guesses."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app import clock
from app.alerts import record_alerts
from app.assessments.records import (
    EnteredInError,
    Problems,
    check_links,
    check_time,
    mark_entered_in_error,
    refuse,
)
from app.assessments.schemas import (
    UNSURE,
    AssessmentKind,
    BlindingGuessCreate,
    BlindingGuessRead,
    CssrsAnswers,
    CssrsScreenCreate,
    CssrsScreenRead,
)
from app.clinical import cssrs
from app.errors import Conflict, NotFound
from app.models import Assessment, Participant
from app.participants.service import consent_time
from app.protocols import service as protocols
from app.vocabulary import RecordStatus

ANSWER_FIELDS = tuple(CssrsAnswers.model_fields)
GUESS_FIELDS = ("guessed_arm", "confidence_pct", "confidence_level")


def create(
    session: Session, participant: Participant, data: CssrsScreenCreate | BlindingGuessCreate
) -> Assessment:
    problems = check_links(
        session, participant, dosing_session_id=data.dosing_session_id, visit_id=data.visit_id
    )
    check_time(
        problems, "administered_at", data.administered_at, consent_time(session, participant)
    )
    if isinstance(data, CssrsScreenCreate):
        problems += cssrs.inconsistencies(_answers(data))
        payload = data.model_dump(mode="json", include=set(ANSWER_FIELDS))
    else:
        problems += _guess_problems(session, participant, data)
        payload = data.model_dump(mode="json", include=set(GUESS_FIELDS))
    # located like pydantic locates errors in a body tagged by kind: "cssrs_screen.visit_id"
    refuse([(f"{data.kind}.{field}", message) for field, message in problems])
    if isinstance(data, BlindingGuessCreate) and participant.randomised_at is None:
        raise Conflict(
            f"participant {participant.subject_id} is not randomised yet; a blinding guess is "
            "recorded once an arm has been assigned"
        )
    assessment = Assessment(
        participant_id=participant.id,
        dosing_session_id=data.dosing_session_id,
        visit_id=data.visit_id,
        kind=data.kind,
        administered_at=data.administered_at,
        respondent_role=data.respondent_role,
        data=payload,
    )
    session.add(assessment)
    session.flush()
    record_alerts.raise_for_cssrs_screen(session, assessment, clock.utcnow())
    return assessment


def _answers(values: CssrsAnswers | dict[str, Any]) -> cssrs.Answers:
    if isinstance(values, dict):
        values = CssrsAnswers.model_validate(values)
    return cssrs.Answers(
        wish_to_be_dead=values.wish_to_be_dead,
        suicidal_thoughts=values.suicidal_thoughts,
        ideation_with_methods=values.ideation_with_methods,
        ideation_with_intent=values.ideation_with_intent,
        ideation_with_plan_and_intent=values.ideation_with_plan_and_intent,
        suicidal_behaviour=values.suicidal_behaviour,
        behaviour_within_3_months=values.behaviour_within_3_months,
        recall_period=values.recall_period,
    )


def _guess_problems(
    session: Session, participant: Participant, data: BlindingGuessCreate
) -> Problems:
    problems: Problems = []
    version = protocols.get_version(session, participant.protocol_version_id)
    arms = protocols.definition(version).arm_codes()
    if data.guessed_arm not in arms and data.guessed_arm != UNSURE:
        problems.append(
            (
                "guessed_arm",
                f"{data.guessed_arm!r} is not an arm of protocol {version.protocol_key} "
                f"{version.version_label}; give one of: {', '.join([*arms, UNSURE])}",
            )
        )
    if (data.confidence_pct is None) == (data.confidence_level is None):
        problems.append(
            (
                "confidence_pct",
                "give the confidence either as confidence_pct (0-100) or as confidence_level "
                "(a 5-level scale), exactly one of them",
            )
        )
    return problems


def get(session: Session, assessment_id: uuid.UUID) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(f"assessment {assessment_id} does not exist")
    return assessment


def enter_in_error(session: Session, assessment: Assessment, data: EnteredInError) -> Assessment:
    mark_entered_in_error(session, assessment, "assessment", data)
    record_alerts.withdraw_for_entered_in_error(session, assessment, data.reason)
    return assessment


def listing(
    participant_id: uuid.UUID,
    *,
    kind: AssessmentKind | None = None,
    include_entered_in_error: bool = False,
) -> Select[Assessment]:
    stmt = select(Assessment).where(Assessment.participant_id == participant_id)
    if kind is not None:
        stmt = stmt.where(Assessment.kind == kind.value)
    if not include_entered_in_error:
        stmt = stmt.where(Assessment.record_status == RecordStatus.VALID.value)
    return stmt


def present(assessment: Assessment) -> CssrsScreenRead | BlindingGuessRead:
    """The read shape of its kind; a C-SSRS screen with its positive items and risk."""
    common = {
        "id": assessment.id,
        "participant_id": assessment.participant_id,
        "visit_id": assessment.visit_id,
        "dosing_session_id": assessment.dosing_session_id,
        "respondent_role": assessment.respondent_role,
        "administered_at": assessment.administered_at,
        "received_at": assessment.created_at,
        "record_status": assessment.record_status,
        "error_reason": assessment.error_reason,
    }
    if assessment.kind == AssessmentKind.CSSRS_SCREEN:
        answers = _answers(assessment.data)
        return CssrsScreenRead.model_validate(
            common
            | {field: assessment.data.get(field) for field in ANSWER_FIELDS}
            | {
                "kind": assessment.kind,
                "positive_items": cssrs.positive_items(answers),
                "risk": cssrs.risk(answers),
            }
        )
    return BlindingGuessRead.model_validate(
        common
        | {field: assessment.data.get(field) for field in GUESS_FIELDS}
        | {"kind": assessment.kind}
    )


def present_all(assessments: Sequence[Assessment]) -> list[CssrsScreenRead | BlindingGuessRead]:
    return [present(assessment) for assessment in assessments]
