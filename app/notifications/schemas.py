"""Subscriptions and deliveries as the API shows them."""

import uuid
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, model_validator

from app.models.alert import AlertSeverity
from app.models.notification import Channel, DeliveryStatus
from app.notifications.outbox import DEFAULT_EVENT_TYPES

EventType = Literal[
    "alert.opened",
    "alert.severity_raised",
    "alert.escalated",
    "alert.disproved",
    "alert.acknowledged",
    "alert.resolved",
]
Addressee = Literal["clinician", "medical_monitor"]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    url: HttpUrl | None = Field(
        default=None, description="webhook: where events are POSTed (https; http only to loopback)"
    )
    email: EmailStr | None = Field(default=None, description="email: the address told")
    site_id: uuid.UUID | None = Field(default=None, description="only this site's alerts")
    role: Addressee | None = Field(
        default=None,
        description="only alerts addressed to this role: the site's clinician before "
        "escalation, the medical monitor after",
    )
    min_severity: AlertSeverity = AlertSeverity.WARNING
    event_types: list[EventType] = Field(
        default_factory=lambda: list(DEFAULT_EVENT_TYPES),  # type: ignore[arg-type]
        min_length=1,
    )
    label: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.channel == Channel.WEBHOOK and (self.url is None or self.email is not None):
            raise ValueError("a webhook subscription gives a url, and no email")
        if self.channel == Channel.EMAIL and (self.email is None or self.url is not None):
            raise ValueError("an email subscription gives an email address, and no url")
        return self


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: Channel
    target: str
    site_id: uuid.UUID | None
    role: Addressee | None
    min_severity: AlertSeverity
    event_types: list[str]
    label: str | None
    active: bool
    created_at: datetime


class SubscriptionCreated(SubscriptionRead):
    secret: str | None = Field(
        description="webhook: the signing secret (Standard Webhooks), shown only now"
    )


class DeliveryRead(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    alert_id: uuid.UUID
    subscription_id: uuid.UUID
    channel: Channel
    target: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    requeued_at: datetime | None
