"""Electronic signatures (21 CFR 11.50/11.70): bound to the hash of the exact record signed."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId


class SignatureStatus(StrEnum):
    VALID = "valid"
    VOIDED = "voided"


class Signature(HasId, Audited, Base):
    __tablename__ = "signatures"
    __table_args__ = (Index(None, "entity_type", "entity_id"),)

    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID]
    signer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(32))
    signed_at: Mapped[datetime]
    record_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="valid")
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)
