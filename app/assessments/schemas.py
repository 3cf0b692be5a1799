import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool

from app.clinical.cssrs import RecallPeriod, Risk
from app.pagination import Page
from app.schemas import AwareDatetime, ReadModel, WriteModel
from app.vocabulary import RecordStatus

UNSURE = "unsure"


class AssessmentKind(StrEnum):
    CSSRS_SCREEN = "cssrs_screen"
    BLINDING_GUESS = "blinding_guess"


class ConfidenceLevel(StrEnum):
    """A 5-level confidence scale, the alternative to a 0-100 percentage."""

    NOT_AT_ALL = "not_at_all"
    SLIGHTLY = "slightly"
    MODERATELY = "moderately"
    VERY = "very"
    COMPLETELY = "completely"


class _Links(WriteModel):
    administered_at: AwareDatetime
    visit_id: uuid.UUID | None = None
    dosing_session_id: uuid.UUID | None = None


class CssrsAnswers(BaseModel):
    wish_to_be_dead: StrictBool = Field(description="item 1: wish to be dead")
    suicidal_thoughts: StrictBool = Field(
        description="item 2: non-specific active suicidal thoughts"
    )
    ideation_with_methods: StrictBool | None = Field(
        default=None,
        description="item 3: active ideation with any methods, without intent to act; "
        "answered only if item 2 is yes",
    )
    ideation_with_intent: StrictBool | None = Field(
        default=None,
        description="item 4: active ideation with some intent to act, without a specific plan; "
        "answered only if item 2 is yes",
    )
    ideation_with_plan_and_intent: StrictBool | None = Field(
        default=None,
        description="item 5: active ideation with a specific plan and intent; answered only if "
        "item 2 is yes",
    )
    suicidal_behaviour: StrictBool = Field(description="item 6: suicidal behaviour")
    behaviour_within_3_months: StrictBool | None = Field(
        default=None, description="answered only if item 6 is yes"
    )
    recall_period: RecallPeriod


class CssrsScreenCreate(CssrsAnswers, _Links):
    kind: Literal["cssrs_screen"]
    respondent_role: Literal["rater", "clinician", "therapist"] = Field(
        default="rater", description="the role of whoever administered the screen"
    )


class BlindingGuessCreate(_Links):
    kind: Literal["blinding_guess"]
    respondent_role: Literal["participant", "therapist", "rater"]
    guessed_arm: str = Field(
        min_length=1,
        max_length=32,
        description="an arm code of the participant's protocol version, or 'unsure'",
    )
    confidence_pct: int | None = Field(
        default=None, strict=True, ge=0, le=100, description="either this or confidence_level"
    )
    confidence_level: ConfidenceLevel | None = Field(
        default=None, description="either this or confidence_pct"
    )


AssessmentCreate = Annotated[CssrsScreenCreate | BlindingGuessCreate, Field(discriminator="kind")]


class _AssessmentReadBase(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    visit_id: uuid.UUID | None
    dosing_session_id: uuid.UUID | None
    respondent_role: str
    administered_at: datetime
    received_at: datetime = Field(description="when the server received the form")
    record_status: RecordStatus
    error_reason: str | None


class CssrsScreenRead(CssrsAnswers, _AssessmentReadBase):
    kind: Literal["cssrs_screen"]
    positive_items: list[int] = Field(description="the items (1-6) answered yes")
    risk: Risk = Field(
        description="screener triage: 1-2 low, 3 moderate, 4-5 high; "
        "6 high within 3 months, else moderate"
    )


class BlindingGuessRead(_AssessmentReadBase):
    kind: Literal["blinding_guess"]
    guessed_arm: str
    confidence_pct: int | None
    confidence_level: ConfidenceLevel | None


AssessmentRead = Annotated[CssrsScreenRead | BlindingGuessRead, Field(discriminator="kind")]


class AssessmentPage(Page[AssessmentRead]):
    """A page of assessments of any kind."""
