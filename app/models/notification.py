"""Alerts that leave the building: who is told (subscriptions), what was to be told (events, the
transactional outbox) and each attempt to tell it (deliveries).

An event and its deliveries are written in the transaction of the alert change they tell of
(app/notifications/outbox.py), so a committed alert change always has them and a rolled-back one
never does; they are delivered after commit (app/notifications/dispatcher.py). An event's id is
stable across retries: the webhook's ``webhook-id`` and ``Idempotency-Key``, the e-mail's
``Message-ID``, so a receiver can keep what it is told exactly once.

Events and deliveries are telemetry of the alert's audit trail, not trial data: not audited
themselves (the alert change they tell of is), never deleted. Subscriptions are configuration
an admin changes: audited, never deleted (deactivated instead).
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent (again) at next_attempt_at
    DELIVERED = "delivered"  # the receiver took it (2xx; the SMTP server accepted it)
    DEAD = "dead"  # every attempt failed: an admin looks at it and may send it again


class NotificationSubscription(HasId, Timestamped, Audited, Base):
    __tablename__ = "notification_subscriptions"
    __audit_exclude__ = frozenset({"updated_at", "secret"})

    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))  # the webhook's URL, the e-mail address
    # the webhook's signing key (Standard Webhooks ``whsec_`` form); shown once, when created
    secret: Mapped[str | None] = mapped_column(String(100))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id"))  # None: every site
    # whom the alert is addressed to: clinician (the site's, before escalation), medical_monitor
    # (after escalation); None: both
    role: Mapped[str | None] = mapped_column(String(32))
    min_severity: Mapped[str] = mapped_column(String(16), default="warning")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    label: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)


class NotificationEvent(Base):
    __tablename__ = "notification_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), index=True)
    created_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # what every channel is told


class NotificationDelivery(HasId, Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_events.id"), index=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_subscriptions.id"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    # a worker sending it holds it until then; one that dies mid-send lets it go by itself
    leased_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    requeued_at: Mapped[datetime | None]  # an admin sent a dead one again
    requeued_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
