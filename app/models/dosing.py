"""Dosing (experimental) sessions and the doses given in them."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Audited, Base, HasId, Timestamped, record_status_check
from app.vocabulary import RecordStatus


class DosingSessionStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"


class DosingSession(HasId, Timestamped, Audited, Base):
    __tablename__ = "dosing_sessions"

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    visit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visits.id"), unique=True)
    protocol_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("protocol_versions.id"))
    status: Mapped[str] = mapped_column(String(32), default="planned")
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    lead_therapist_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    co_therapist_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    therapists_present_at: Mapped[datetime | None]
    lead_present_at: Mapped[datetime | None]
    co_present_at: Mapped[datetime | None]
    baseline_attested_at: Mapped[datetime | None]
    baseline_attested_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    baseline_attestation_note: Mapped[str | None] = mapped_column(Text)
    end_reason: Mapped[str | None] = mapped_column(Text)


class Dose(HasId, Audited, Base):
    __tablename__ = "doses"
    __table_args__ = (record_status_check(),)

    dosing_session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dosing_sessions.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    amount_mg: Mapped[float]
    administered_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    deviation_reason: Mapped[str | None] = mapped_column(Text)
    record_status: Mapped[str] = mapped_column(String(20), default=RecordStatus.VALID.value)
    error_reason: Mapped[str | None] = mapped_column(Text)
