"""Subscriptions (an admin's) and deliveries: the dead letters an admin looks at and sends again."""

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app import clock
from app.audit.recorder import record_event
from app.config import get_settings
from app.errors import Conflict, InvalidInput, NotFound
from app.models import (
    Alert,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    Site,
)
from app.models.notification import Channel, DeliveryStatus
from app.notifications import messages
from app.notifications.schemas import SubscriptionCreate

LOOPBACK_NAMES = frozenset({"localhost"})


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create(session: Session, data: SubscriptionCreate) -> NotificationSubscription:
    settings = get_settings()
    if data.site_id is not None and session.get(Site, data.site_id) is None:
        raise NotFound(f"site {data.site_id} does not exist")
    secret = None
    if data.channel == Channel.WEBHOOK:
        assert data.url is not None  # the schema's check
        if data.url.scheme != "https" and not _loopback(data.url.host or ""):
            raise InvalidInput(
                f"a webhook's url is https (http only to this machine): {data.url} is not"
            )
        target, secret = str(data.url), messages.new_secret()
    else:
        if not settings.smtp_host:
            raise InvalidInput(
                "no SMTP server is configured: set VIGIL_SMTP_HOST (and VIGIL_SMTP_FROM) first"
            )
        target = str(data.email)
    subscription = NotificationSubscription(
        channel=data.channel.value,
        target=target,
        secret=secret,
        site_id=data.site_id,
        role=data.role,
        min_severity=data.min_severity.value,
        event_types=list(dict.fromkeys(data.event_types)),
        label=data.label,
    )
    session.add(subscription)
    session.flush()
    return subscription


def get(session: Session, subscription_id: uuid.UUID) -> NotificationSubscription:
    subscription = session.get(NotificationSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"notification subscription {subscription_id} does not exist")
    return subscription


def deactivate(session: Session, subscription_id: uuid.UUID) -> NotificationSubscription:
    subscription = get(session, subscription_id)
    subscription.active = False
    session.flush()
    return subscription


def deliveries(status: DeliveryStatus | None) -> Select[NotificationDelivery]:
    stmt = select(NotificationDelivery)
    if status is not None:
        stmt = stmt.where(NotificationDelivery.status == status.value)
    return stmt


@dataclass(frozen=True)
class Told:
    event_type: str
    alert_id: uuid.UUID
    channel: str
    target: str
    alert_severity: str
    alert_title: str


def told(session: Session, rows: Sequence[NotificationDelivery]) -> dict[uuid.UUID, Told]:
    """What each delivery tells and to whom (one query for a page)."""
    found = session.execute(
        select(
            NotificationDelivery.id,
            NotificationEvent.type,
            NotificationEvent.alert_id,
            NotificationSubscription.channel,
            NotificationSubscription.target,
            Alert.severity,
            Alert.title,
        )
        .join(NotificationEvent, NotificationEvent.id == NotificationDelivery.event_id)
        .join(Alert, Alert.id == NotificationEvent.alert_id)
        .join(
            NotificationSubscription,
            NotificationSubscription.id == NotificationDelivery.subscription_id,
        )
        .where(NotificationDelivery.id.in_([row.id for row in rows]))
    ).all()
    return {row[0]: Told(*row[1:]) for row in found}


def requeue(session: Session, delivery_id: uuid.UUID, user_id: uuid.UUID) -> NotificationDelivery:
    """A dead delivery is sent again (from its first pause on), and the admin's asking audited."""
    delivery = session.get(NotificationDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"notification delivery {delivery_id} does not exist")
    if delivery.status != DeliveryStatus.DEAD:
        raise Conflict(
            f"delivery {delivery_id} is {delivery.status}; only a dead one is sent again"
        )
    record_event(
        session,
        "requeue",
        "notification_deliveries",
        str(delivery.id),
        after={
            "event_id": str(delivery.event_id),
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
        },
        reason="a dead notification delivery sent again",
    )
    now = clock.utcnow()
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.requeued_at = now
    delivery.requeued_by_id = user_id
    session.flush()
    return delivery


def subscriptions(active: bool | None) -> Select[NotificationSubscription]:
    stmt = select(NotificationSubscription)
    if active is not None:
        stmt = stmt.where(NotificationSubscription.active.is_(active))
    return stmt
