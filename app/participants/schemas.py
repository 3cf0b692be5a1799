import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, model_validator

from app.schemas import ClinicalDate, ReadModel, Reason, WriteModel


class ParticipantStatus(StrEnum):
    SCREENING = "screening"
    ENROLLED = "enrolled"
    RANDOMISED = "randomised"
    IN_TREATMENT = "in_treatment"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    SCREEN_FAILED = "screen_failed"


class WithdrawalReason(StrEnum):
    """Coded reasons, so a dropout is never an undisclosed free-text note."""

    ADVERSE_EVENT = "adverse_event"
    LACK_OF_EFFICACY = "lack_of_efficacy"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    PARTICIPANT_DECISION = "participant_decision"
    PHYSICIAN_DECISION = "physician_decision"
    PROTOCOL_DEVIATION = "protocol_deviation"
    PREGNANCY = "pregnancy"
    DEATH = "death"
    SPONSOR_DECISION = "sponsor_decision"
    OTHER = "other"


class ScreenFailureReason(StrEnum):
    INCLUSION_NOT_MET = "inclusion_criteria_not_met"
    EXCLUSION_MET = "exclusion_criteria_met"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OTHER = "other"


class ParticipantCreate(WriteModel):
    site_id: uuid.UUID
    subject_id: str = Field(
        min_length=3,
        max_length=32,
        pattern=r"^[A-Z0-9][A-Z0-9-]*$",
        description="Pseudonymous subject id, e.g. 01-003; never a name or record number",
    )
    sex: Literal["F", "M", "U"]
    age_years: int = Field(strict=True, ge=18, le=100)
    consented_on: ClinicalDate


class ParticipantRead(ReadModel):
    id: uuid.UUID
    study_id: uuid.UUID
    site_id: uuid.UUID
    subject_id: str
    sex: str
    age_years: int
    status: ParticipantStatus
    status_reason_code: str | None
    status_reason_text: str | None
    protocol_version_id: uuid.UUID
    consented_on: date | None
    enrolled_on: date | None
    arm_code: str | None = Field(
        description="masked ('BLINDED') for every caller but the unblinded pharmacist and the "
        "clinician who unblinded this participant in an emergency"
    )
    randomised_at: datetime | None
    reconsented_on: date | None = Field(
        description="the re-consent date of the amendment the participant was last moved to"
    )
    unblinded_at: datetime | None = Field(
        description="when the participant was unblinded in an emergency (UTC); shown to all"
    )
    unblinded_by_id: uuid.UUID | None = Field(description="the clinician who unblinded")
    unblinding_reason_code: str | None
    unblinding_justification: str | None
    created_at: datetime


class Enrolment(WriteModel):
    enrolled_on: ClinicalDate


class Withdrawal(WriteModel):
    reason_code: WithdrawalReason
    reason_text: Reason | None = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> "Withdrawal":
        if self.reason_code == WithdrawalReason.OTHER and not self.reason_text:
            raise ValueError("reason_text is required when reason_code is 'other'")
        return self


class ScreenFailure(WriteModel):
    reason_code: ScreenFailureReason
    reason_text: Reason | None = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> "ScreenFailure":
        if self.reason_code == ScreenFailureReason.OTHER and not self.reason_text:
            raise ValueError("reason_text is required when reason_code is 'other'")
        return self


class Completion(WriteModel):
    note: str | None = None


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    MISSED = "missed"


class VisitRead(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    code: str
    name: str
    kind: str
    sequence: int
    target_on: date
    window_start_on: date
    window_end_on: date
    scheduled_on: date
    reschedule_reason: str | None
    status: VisitStatus
    occurred_on: date | None
    status_reason: str | None
    out_of_window: bool


class VisitReschedule(WriteModel):
    scheduled_on: ClinicalDate
    reason: Reason


class VisitOutcome(WriteModel):
    status: Literal["completed", "missed"]
    occurred_on: ClinicalDate | None = None
    reason: Reason | None = Field(default=None, description="required for a missed visit")

    @model_validator(mode="after")
    def _consistent(self) -> "VisitOutcome":
        if self.status == "completed" and self.occurred_on is None:
            raise ValueError("occurred_on is required for a completed visit")
        if self.status == "missed" and not self.reason:
            raise ValueError("reason is required for a missed visit")
        return self


class Amendment(WriteModel):
    """Move a participant to a newer version (an amendment) of their protocol."""

    protocol_version_id: uuid.UUID = Field(
        description="a newer version of the protocol the participant is under"
    )
    reconsented_on: ClinicalDate = Field(
        description="the day the participant consented to the amendment: not before enrolment "
        "(or consent), not after today at the site"
    )
    reason: Reason


class UnblindingReason(StrEnum):
    """Why a participant's arm had to be known (docs/blinding.md)."""

    MEDICAL_EMERGENCY = "medical_emergency"  # treating an acute emergency needs the arm
    SERIOUS_ADVERSE_EVENT = "serious_adverse_event"  # managing an SAE needs the arm
    OVERDOSE_OR_INTERACTION = "overdose_or_interaction"  # suspected overdose, interacting drug
    PREGNANCY = "pregnancy"  # a pregnancy whose care depends on the exposure
    OTHER = "other"  # said in the justification


class EmergencyUnblinding(WriteModel):
    """A clinician's emergency unblinding: both components of their credentials again, a
    coded reason and a justification (which every reader of the participant sees: never write
    the arm in it)."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="the clinician's own username"
    )
    password: Annotated[SecretStr, Field(min_length=1, max_length=1024)] = Field(
        description="the clinician's password, checked again for this unblinding"
    )
    reason_code: UnblindingReason
    justification: Reason
