import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

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
    evidence_entered_in_error: str | None = Field(
        description="set on a critical alert left open although all its evidence was entered in "
        "error before anyone acknowledged it: why; a clinician acknowledges and resolves it"
    )
    created_at: datetime
    updated_at: datetime
