import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models.alert import AlertSeverity, AlertStatus
from app.schemas import ReadModel, Text, WriteModel


class AlertAcknowledge(WriteModel):
    note: Text | None = Field(default=None, description="what the acknowledging clinician noted")


class AlertResolve(WriteModel):
    resolution: Text = Field(description="how the alert was resolved")


class AlertRead(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    dosing_session_id: uuid.UUID | None
    site_id: uuid.UUID
    protocol_version_id: uuid.UUID
    rule_id: str
    kind: str
    severity: AlertSeverity
    status: AlertStatus
    dedup_key: str
    title: str
    message: str = Field(
        description="the sentence a clinician reads: the first occurrence at the alert's severity"
    )
    finding: dict[str, Any] = Field(
        description="the explanation of the first occurrence at the alert's severity"
    )
    first_found_at: datetime = Field(description="the earliest occurrence, of any severity")
    severity_since: datetime = Field(
        description="the first occurrence at the alert's current severity"
    )
    last_found_at: datetime = Field(description="the latest occurrence, of any severity")
    occurrences: int = Field(description="the occurrences taken in, the first and all later ones")
    acknowledge_by: datetime | None = Field(
        description="the protocol's acknowledgement deadline for the alert's severity"
    )
    acknowledged_at: datetime | None
    acknowledged_by_id: uuid.UUID | None
    acknowledgement_note: str | None
    resolved_at: datetime | None
    resolved_by_id: uuid.UUID | None
    resolution: str | None
    escalation_level: int = Field(description="0: site clinician; 1: medical monitor")
    escalated_at: datetime | None
    disproved: str | None = Field(
        description="set on a critical alert left open although every occurrence was withdrawn "
        "before anyone acknowledged it (its evidence entered in error, or its due times met by "
        "readings that arrived late): why; a clinician acknowledges and resolves it"
    )
    created_at: datetime
    updated_at: datetime


class Lateness(BaseModel):
    """A finding's data arrived late: the reading received last, more than the protocol's
    ``vitals_schedule.late_after_minutes`` after it was measured."""

    reading_id: str
    measured_at: datetime
    received_at: datetime
    minutes_late: float


class OccurrenceRead(BaseModel):
    """One occurrence an alert took in, as the rules engine explained it. The explanation is
    stored from migration 0009 on; occurrences taken in before show only their time."""

    occurrence_id: str = Field(description="the SHA-256 of the occurrence key, unique per alert")
    found_at: datetime = Field(description="when the finding became true")
    severity: AlertSeverity | None
    message: str | None = Field(description="the sentence a clinician reads")
    observed: dict[str, Any] | None = Field(
        description="the values the rule used, keyed by SDTM code (or the rule's own names)"
    )
    thresholds: list[str] | None = Field(description="what the values were compared with")
    evidence: list[str] | None = Field(
        description="ids of the readings, doses, adverse events or screens behind it"
    )
    variant: str | None = Field(description="e.g. no-baseline, deadline-passed; null: the rule")
    late: Lateness | None = Field(
        description="how late its data arrived, when a reading behind it was late; null otherwise"
    )
    withdrawn: bool = Field(description="taken back: no longer counted")
    withdrawn_at: datetime | None
    withdrawn_reason: str | None = Field(
        description="why: the entered-in-error reason, or the readings that met a due time"
    )


class OccurrencePage(BaseModel):
    items: list[OccurrenceRead]
    next_cursor: str | None = Field(
        description="null: no more; otherwise the cursor of GET /alerts/{id}/occurrences"
    )


class AlertDetail(AlertRead):
    measures: list[str] = Field(description="the SDTM test codes the alert's rule reads")
    occurrence_page: OccurrencePage = Field(
        description="its occurrences, oldest first, withdrawn ones included: the first page; "
        "GET /alerts/{id}/occurrences?cursor=next_cursor reads on"
    )
