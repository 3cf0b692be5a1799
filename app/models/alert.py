"""Alerts: what the rules engine found, kept open until a clinician acknowledges and resolves it."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped

# At most one alert per dedup key is not yet resolved: a repeated finding updates it, and two
# concurrent writers cannot both open one (the second insert fails on this index).
_NOT_RESOLVED = text("status != 'resolved'")


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(HasId, Timestamped, Audited, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_dedup_key_not_resolved",
            "dedup_key",
            unique=True,
            postgresql_where=_NOT_RESOLVED,
            sqlite_where=_NOT_RESOLVED,
        ),
        Index(None, "site_id", "status"),
    )

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    # None for alerts on an adverse event or a C-SSRS screen outside a dosing session
    dosing_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dosing_sessions.id"), index=True
    )
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"))
    protocol_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("protocol_versions.id"))
    rule_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    status: Mapped[str] = mapped_column(
        String(16), default="open"
    )  # open | acknowledged | resolved
    dedup_key: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)  # the sentence a clinician reads, of ``finding``
    # the first occurrence at the current severity: values, thresholds, readings used
    finding: Mapped[dict[str, Any]]
    first_found_at: Mapped[datetime]  # the earliest occurrence, of any severity
    severity_since: Mapped[datetime]  # the first occurrence at the current severity
    last_found_at: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(default=1)
    acknowledge_by: Mapped[datetime | None]  # the protocol's deadline for its severity
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    escalation_level: Mapped[int] = mapped_column(default=0)  # 0 site clinician, 1 medical monitor
    escalated_at: Mapped[datetime | None]
    # Set when every occurrence of a critical alert nobody had acknowledged was withdrawn (its
    # evidence entered in error, or its due times met by readings that arrived late): why. The
    # alert stays open, saying so, until a clinician sees it.
    disproved: Mapped[str | None] = mapped_column(Text)


class AlertOccurrence(Base):
    """One occurrence an alert has taken in: the memory that makes a repeated evaluation change
    nothing. Written once with its alert's change, with the finding it was taken in for;
    changed only to withdraw it (a record behind it was entered in error, or later data
    disproved it), to count it again, or to narrow an overdue one's missing measures; never
    deleted. The alert's audit records show the change (occurrences, the
    latest finding), a withdrawal has an audit record of its own.
    ``occurrence_hash`` is the SHA-256 of the finding's occurrence key, which names every record
    behind it and has no bound on length; the records are :class:`OccurrenceEvidence` rows."""

    __tablename__ = "alert_occurrences"

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    occurrence_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    found_at: Mapped[datetime]  # the finding's moment: an evaluation since t needs those from t on
    # the finding as the engine explained it (``Finding.as_dict`` with the alert's key): severity,
    # message, observed values, thresholds, evidence; None for occurrences before migration 0009
    finding: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)  # why: entered in error, disproved


class OccurrenceEvidence(Base):
    """A record an occurrence's finding used (its ``evidence``: a reading, dose, adverse event or
    screen), so a record entered in error finds the occurrences to withdraw. Occurrences taken
    in before these rows existed may have none: their evidence is unknown."""

    __tablename__ = "alert_occurrence_evidence"
    __table_args__ = (
        ForeignKeyConstraint(
            ["alert_id", "occurrence_hash"],
            ["alert_occurrences.alert_id", "alert_occurrences.occurrence_hash"],
        ),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    occurrence_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
