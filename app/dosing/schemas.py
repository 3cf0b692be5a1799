import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field, FiniteFloat

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


class TherapistPresence(WriteModel):
    lead_therapist_id: uuid.UUID
    co_therapist_id: uuid.UUID
    present_at: AwareDatetime = Field(description="when both therapists were present together")


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
