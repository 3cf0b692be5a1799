import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, FiniteFloat, SecretStr, StringConstraints, model_validator

from app.models.dosing import DosingSessionStatus
from app.schemas import AwareDatetime, ReadModel, Reason, Text, WriteModel
from app.signatures.schemas import SignatureRead
from app.vocabulary import RecordStatus


class DoseKind(StrEnum):
    INITIAL = "initial"
    SUPPLEMENTAL = "supplemental"


class DosingSessionCreate(WriteModel):
    visit_id: uuid.UUID = Field(description="one of the participant's experimental visits")


class SessionStart(WriteModel):
    started_at: AwareDatetime


class SessionEnd(WriteModel):
    ended_at: AwareDatetime
    end_reason: Reason | None = Field(
        default=None,
        description="why the session ends without the return-to-baseline attestation; "
        "without that attestation a session ends only with a reason",
    )


class TherapistPresence(WriteModel):
    lead_therapist_id: uuid.UUID
    co_therapist_id: uuid.UUID
    present_at: AwareDatetime = Field(description="when both therapists were present together")
    reason: Reason = Field(
        description="why a clinician attests the pair for them, rather than each therapist "
        "attesting their own presence (POST /dosing-sessions/{id}/therapist-attestations)"
    )


class BaselineAttestation(WriteModel):
    attested_by_id: uuid.UUID = Field(description="a clinician or therapist user")
    attested_at: AwareDatetime
    note: Text | None = Field(default=None, description="e.g. the last readings seen")


class DoseCreate(WriteModel):
    kind: DoseKind
    amount_mg: FiniteFloat = Field(strict=True, gt=0, le=10000)
    administered_at: AwareDatetime
    deviation_reason: Reason | None = Field(
        default=None,
        description="why a dose that contradicts the protocol was given; without it such a "
        "dose is refused",
    )
    gate_override_reason: Reason | None = Field(
        default=None,
        description="why a supplemental dose is given while the dose gate is closed; a "
        "clinician only; kept with the dose as deviation_reason 'gate override: ...'",
    )


class EnteredInError(WriteModel):
    reason: Reason


class DoseRead(ReadModel):
    id: uuid.UUID
    dosing_session_id: uuid.UUID
    kind: DoseKind
    amount_mg: float
    administered_at: datetime
    recorded_at: datetime
    deviation_reason: str | None
    record_status: RecordStatus
    error_reason: str | None


class SupplementalWindow(ReadModel):
    opens_at: datetime
    closes_at: datetime


class Therapists(ReadModel):
    lead_therapist_id: uuid.UUID
    co_therapist_id: uuid.UUID
    present_at: datetime


class BaselineAttestationRead(ReadModel):
    attested_by_id: uuid.UUID
    attested_at: datetime
    note: str | None


class DosingSessionRead(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    visit_id: uuid.UUID
    visit_code: str
    protocol_version_id: uuid.UUID
    status: DosingSessionStatus
    started_at: datetime | None
    ended_at: datetime | None
    therapists: Therapists | None
    baseline_attestation: BaselineAttestationRead | None
    end_reason: str | None = Field(
        description="why the session ended without the return-to-baseline attestation"
    )
    started_before_window: bool = Field(
        description="the session started before its visit's window opened (site-local date)"
    )
    drug: str
    doses: list[DoseRead] = Field(description="every dose recorded, entered-in-error ones included")
    total_mg: float = Field(description="sum of the valid doses")
    supplemental_window: SupplementalWindow | None = Field(
        description="when the protocol allows the supplemental dose, from the valid initial "
        "dose; null without an initial dose or when the protocol has no supplemental dose"
    )
    created_at: datetime
    signatures: list[SignatureRead] = Field(
        description="every e-signature of the record, voided ones included, oldest first"
    )


class DoseGateReason(ReadModel):
    type: str = Field(description="the problem type a refusal of the dose answers with")
    field: str = Field(description="the dose field it is about ('gate' for the gate's rules)")
    message: str


class DoseGateRead(ReadModel):
    open: bool = Field(
        description="true when the dose would be recorded without deviation_reason or "
        "gate_override_reason"
    )
    reasons: list[DoseGateReason] = Field(
        description="why it is closed, first by priority, as a refused dose's `errors` lists "
        "them; empty when open"
    )
    opens_at: datetime | None
    closes_at: datetime | None
    supplemental_mg: float | None = Field(description="the amount the protocol sets")
    amount_mg: float | None = Field(description="the amount judged")
    evaluated_at: datetime = Field(description="as_of: the moment judged")


class TherapistAttestation(WriteModel):
    """One therapist of the pair present: attested by that therapist, who signs in again
    (username and password), or by a clinician for them, with a reason."""

    position: Literal["lead", "co"]
    present_at: AwareDatetime
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="the attesting therapist's own username"
    )
    password: Annotated[SecretStr, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="the attesting therapist's password, checked again"
    )
    therapist_id: uuid.UUID | None = Field(
        default=None, description="the therapist a clinician attests for"
    )
    reason: Reason | None = Field(
        default=None, description="why a clinician attests for the therapist"
    )

    @model_validator(mode="after")
    def _one_way(self) -> "TherapistAttestation":
        own = self.username is not None or self.password is not None
        for_them = self.therapist_id is not None or self.reason is not None
        if own == for_them:
            raise ValueError(
                "give either username and password (a therapist attests their own presence) "
                "or therapist_id and reason (a clinician attests for a therapist)"
            )
        if own and (self.username is None or self.password is None):
            raise ValueError("a therapist attesting their own presence gives username and password")
        if for_them and (self.therapist_id is None or self.reason is None):
            raise ValueError("a clinician attesting for a therapist gives therapist_id and reason")
        return self


class DeviceDosingSessionRead(ReadModel):
    """A dosing session in progress as a bedside device sees it: enough to pick the session to
    post vitals for, and nothing else (never an arm)."""

    id: uuid.UUID
    visit_code: str
    visit_name: str
    started_at: datetime
    subject_id: str = Field(description="The participant's subject id, e.g. 01-001")
