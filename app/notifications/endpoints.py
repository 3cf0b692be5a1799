"""Webhook and e-mail subscriptions to alerts, and their deliveries: admins only
(Permission.NOTIFICATION_MANAGE). See docs/alerts.md, "Alerts beyond the screen"."""

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from app.auth.deps import Authorize, CurrentPrincipal
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import NotificationDelivery, NotificationSubscription
from app.models.notification import Channel, DeliveryStatus
from app.notifications import service
from app.notifications.schemas import (
    DeliveryRead,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
)
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission

router = APIRouter(tags=["notifications"], route_class=CheckedRoute)
MANAGE = [Depends(Authorize(Permission.NOTIFICATION_MANAGE))]


@router.post(
    "/notification-subscriptions",
    response_model=SubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
    dependencies=MANAGE,
)
def create_subscription(session: SessionDep, data: SubscriptionCreate) -> SubscriptionCreated:
    """Tell a webhook or an e-mail address of the alerts that match. A webhook's signing secret
    is in this answer only."""
    subscription = service.create(session, data)
    return SubscriptionCreated.model_validate(
        SubscriptionRead.model_validate(subscription).model_dump() | {"secret": subscription.secret}
    )


@router.get(
    "/notification-subscriptions", response_model=Page[SubscriptionRead], dependencies=MANAGE
)
def list_subscriptions(
    session: SessionDep, page: PageDep, active: bool | None = None
) -> dict[str, object]:
    stmt = service.subscriptions(active)
    rows, cursor = paginate(session, stmt, NotificationSubscription.id, page)
    return {"items": rows, "next_cursor": cursor}


@router.post(
    "/notification-subscriptions/{subscription_id}/deactivate",
    response_model=SubscriptionRead,
    dependencies=MANAGE,
)
def deactivate_subscription(
    session: SessionDep, subscription_id: uuid.UUID
) -> NotificationSubscription:
    """Tell it nothing more (what is already on its way still goes). Kept, never deleted."""
    return service.deactivate(session, subscription_id)


def _deliveries(session: Session, rows: Sequence[NotificationDelivery]) -> list[DeliveryRead]:
    told = service.told(session, rows)
    return [
        DeliveryRead(
            id=row.id,
            event_id=row.event_id,
            event_type=told[row.id].event_type,
            alert_id=told[row.id].alert_id,
            subscription_id=row.subscription_id,
            channel=Channel(told[row.id].channel),
            target=told[row.id].target,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
            requeued_at=row.requeued_at,
        )
        for row in rows
    ]


@router.get("/notification-deliveries", response_model=Page[DeliveryRead], dependencies=MANAGE)
def list_deliveries(
    session: SessionDep, page: PageDep, status: DeliveryStatus | None = None
) -> dict[str, object]:
    """Deliveries, newest last; ``?status=dead`` lists those every attempt failed for."""
    rows, cursor = paginate(session, service.deliveries(status), NotificationDelivery.id, page)
    return {"items": _deliveries(session, rows), "next_cursor": cursor}


@router.post(
    "/notification-deliveries/{delivery_id}/retry",
    response_model=DeliveryRead,
    dependencies=MANAGE,
)
def retry_delivery(
    session: SessionDep, principal: CurrentPrincipal, delivery_id: uuid.UUID
) -> DeliveryRead:
    """Send a dead delivery again, from its first attempt on; 409 unless it is dead."""
    (read,) = _deliveries(session, [service.requeue(session, delivery_id, principal.user_id)])
    return read
