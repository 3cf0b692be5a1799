"""Studies, their sites, and the immutable protocol versions they run under."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Audited, Base, HasId, Timestamped


class ProtocolVersion(HasId, Audited, Base):
    """One loaded protocol file, never changed once stored; an amendment is a new row, with a
    version label of its own (a label names one content)."""

    __tablename__ = "protocol_versions"
    __table_args__ = (
        UniqueConstraint("protocol_key", "sequence"),
        UniqueConstraint("protocol_key", "version_label"),
    )

    protocol_key: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int]
    version_label: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_name: Mapped[str] = mapped_column(String(300))
    source_text: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Study(HasId, Timestamped, Audited, Base):
    __tablename__ = "studies"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    protocol_key: Mapped[str] = mapped_column(String(64))


class Site(HasId, Timestamped, Audited, Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("study_id", "code"),)

    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
