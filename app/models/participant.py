"""Participants (pseudonymous) and the visit schedule generated for them from the protocol."""

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped


class Participant(HasId, Timestamped, Audited, Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("study_id", "subject_id"),)

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id"), index=True)
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    subject_id: Mapped[str] = mapped_column(String(32))
    sex: Mapped[str] = mapped_column(String(1))
    age_years: Mapped[int]
    status: Mapped[str] = mapped_column(String(32), default="screening")
    status_reason_code: Mapped[str | None] = mapped_column(String(64))
    status_reason_text: Mapped[str | None] = mapped_column(Text)
    protocol_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("protocol_versions.id"))
    consented_on: Mapped[date | None]
    enrolled_on: Mapped[date | None]
    arm_code: Mapped[str | None] = mapped_column(String(32))
    randomised_at: Mapped[datetime | None]
    # the re-consent date of the amendment (protocol version) the participant was last moved to
    reconsented_on: Mapped[date | None]
    # An emergency unblinding (app/participants/unblinding.py): when, by whom and why; shown to
    # every reader. The arm itself stays in arm_code, seen by the unblinding clinician only.
    unblinded_at: Mapped[datetime | None]
    unblinded_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    unblinding_reason_code: Mapped[str | None] = mapped_column(String(64))
    unblinding_justification: Mapped[str | None] = mapped_column(Text)


class Visit(HasId, Timestamped, Audited, Base):
    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("participant_id", "code"),)

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    protocol_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("protocol_versions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[int]
    target_on: Mapped[date]
    window_start_on: Mapped[date]
    window_end_on: Mapped[date]
    scheduled_on: Mapped[date]
    reschedule_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="scheduled")
    occurred_on: Mapped[date | None]
    status_reason: Mapped[str | None] = mapped_column(Text)

    @property
    def out_of_window(self) -> bool:
        day = self.occurred_on or self.scheduled_on
        return not (self.window_start_on <= day <= self.window_end_on)
