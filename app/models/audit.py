"""The audit trail: one append-only row per create or change of trial data."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, HasId


class AuditRecord(HasId, Base):
    """Chained: ``record_hash`` is the SHA-256 of the previous record's hash and this record's
    canonical content, so a changed, removed or inserted row breaks the chain (app/audit/chain.py).
    """

    __tablename__ = "audit_records"
    __table_args__ = (Index(None, "entity_type", "entity_id"),)

    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    previous_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))
    # The canonical form the hash was taken in (app/audit/chain.py): 1 before the cut-over to
    # salted commitments, 2 from it on; ``salts`` holds the salt of each committed value.
    chain_version: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    salts: Mapped[dict[str, str] | None] = mapped_column(JSON)

    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
