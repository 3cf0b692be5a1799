"""Clinical records beside the vitals: adverse events, assessments, therapist notes."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped, record_status_check
from app.vocabulary import RecordStatus

# MedDRA coding (app/adverse_events/coding.py): the dictionary classification a coder adds to the
# investigator's record. It is audited like every column, but not covered by the investigator's
# e-signature (app/audit/signed_records.py): coding an event neither voids nor needs a signature.
MEDDRA_COLUMNS = (
    "meddra_version",
    "meddra_llt",
    "meddra_llt_code",
    "meddra_pt",
    "meddra_pt_code",
    "meddra_hlt",
    "meddra_hlt_code",
    "meddra_hlgt",
    "meddra_hlgt_code",
    "meddra_soc",
    "meddra_soc_code",
)


class AdverseEvent(HasId, Timestamped, Audited, Base):
    __tablename__ = "adverse_events"
    __table_args__ = (record_status_check(),)

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    dosing_session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("dosing_sessions.id"))
    verbatim_term: Mapped[str] = mapped_column(String(500))
    onset_at: Mapped[datetime]
    end_at: Mapped[datetime | None]
    severity: Mapped[str] = mapped_column(String(16))
    ctcae_grade: Mapped[int | None]
    ctcae_version: Mapped[str | None] = mapped_column(String(16))
    seriousness_criteria: Mapped[list[str]] = mapped_column(JSON, default=list)
    relatedness: Mapped[str] = mapped_column(String(32))
    expectedness: Mapped[str] = mapped_column(String(16))
    action_taken: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(48))
    site_aware_at: Mapped[datetime]
    sponsor_reported_at: Mapped[datetime | None]
    record_status: Mapped[str] = mapped_column(String(20), default=RecordStatus.VALID.value)
    error_reason: Mapped[str | None] = mapped_column(Text)
    # MedDRA coding: all empty (uncoded) or all given; codes are 8-digit numbers as text, terms
    # at most 100 characters (MedDRA's own limit); the SOC is the primary SOC.
    meddra_version: Mapped[str | None] = mapped_column(String(8))
    meddra_llt: Mapped[str | None] = mapped_column(String(100))
    meddra_llt_code: Mapped[str | None] = mapped_column(String(8))
    meddra_pt: Mapped[str | None] = mapped_column(String(100))
    meddra_pt_code: Mapped[str | None] = mapped_column(String(8))
    meddra_hlt: Mapped[str | None] = mapped_column(String(100))
    meddra_hlt_code: Mapped[str | None] = mapped_column(String(8))
    meddra_hlgt: Mapped[str | None] = mapped_column(String(100))
    meddra_hlgt_code: Mapped[str | None] = mapped_column(String(8))
    meddra_soc: Mapped[str | None] = mapped_column(String(100))
    meddra_soc_code: Mapped[str | None] = mapped_column(String(8))

    @property
    def coded(self) -> bool:
        return self.meddra_pt_code is not None

    @property
    def serious(self) -> bool:
        return bool(self.seriousness_criteria)


class Assessment(HasId, Timestamped, Audited, Base):
    __tablename__ = "assessments"
    __table_args__ = (record_status_check(),)

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    dosing_session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("dosing_sessions.id"))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id"))
    kind: Mapped[str] = mapped_column(String(32))
    administered_at: Mapped[datetime]
    respondent_role: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    record_status: Mapped[str] = mapped_column(String(20), default=RecordStatus.VALID.value)
    error_reason: Mapped[str | None] = mapped_column(Text)


class TherapistNote(HasId, Timestamped, Audited, Base):
    __tablename__ = "therapist_notes"
    __table_args__ = (record_status_check(),)

    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"), index=True)
    dosing_session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("dosing_sessions.id"))
    visit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visits.id"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    written_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    record_status: Mapped[str] = mapped_column(String(20), default=RecordStatus.VALID.value)
    error_reason: Mapped[str | None] = mapped_column(Text)
