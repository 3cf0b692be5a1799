"""People and devices that act in Vigil; roles as in DESIGN.md section 2."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped

user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("site_id", ForeignKey("sites.id"), primary_key=True),
)


class User(HasId, Timestamped, Audited, Base):
    __tablename__ = "users"
    __audit_exclude__ = frozenset({"updated_at", "password_hash"})

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True)
    failed_login_count: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]


class AccessToken(HasId, Audited, Base):
    """A bearer credential: a login session, an API token or a bedside device's token.

    Only the SHA-256 of the token is stored; the token itself is shown once, when issued.
    """

    __tablename__ = "access_tokens"
    __audit_exclude__ = frozenset({"token_hash", "last_seen_at", "last_seen_address"})

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(500))
    last_seen_at: Mapped[datetime | None]
    last_seen_address: Mapped[str | None] = mapped_column(String(64))


class DeviceClock(Base):
    """What a bedside device's clock is off by, estimated from the times its requests say they
    were sent (the HTTP ``Date`` header, ``X-Sent-At``) against the server's clock at receipt.

    ``offset_seconds`` is the median of the last few ``samples`` (device time minus server
    time: positive when the device is ahead); ``measured_at`` is when the last sample was
    taken. A measurement, like a token's last_seen_at, is telemetry rather than trial data: not
    audited; each reading keeps the offset applied to it (VitalReading).
    """

    __tablename__ = "device_clocks"

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    offset_seconds: Mapped[float]
    measured_at: Mapped[datetime]
    samples: Mapped[list[float]] = mapped_column(JSON)
