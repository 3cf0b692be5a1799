"""The answers kept for requests sent with an ``Idempotency-Key`` (app/idempotency.py)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, HasId


class IdempotencyKey(HasId, Base):
    """The first answer to a write sent with a key, committed with the write itself. A key is
    the caller's for one route: the same key on another route, or from another caller, is
    another key. Not audited: it holds no trial data of its own, only an answer already given
    (whose write is audited), and it is deleted once older than VIGIL_IDEMPOTENCY_KEEP_HOURS."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("caller_id", "method", "route", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    caller_id: Mapped[uuid.UUID]  # the user or device that sent it
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(Text)  # the path template: /api/v1/notes/{note_id}
    key: Mapped[str] = mapped_column(String(255))
    request_digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request, hex
    status_code: Mapped[int]
    headers: Mapped[dict[str, Any]]  # the answer's headers that are replayed, by name
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
