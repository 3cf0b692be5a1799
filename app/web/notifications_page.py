"""The notifications page, for admins: the outbox at a glance (deliveries waiting, delivered,
dead), the dead letters (every attempt failed) each with its last error and a button to send it
again, and the webhook and e-mail subscriptions. Sending again goes through the API's own
service (app/notifications/service.py requeue), so it is checked and audited the same way."""

import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.deps import Authorize
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import VigilError
from app.models import NotificationDelivery, NotificationSubscription, Site
from app.models.notification import DeliveryStatus
from app.notifications import service
from app.permissions import Permission
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)
MANAGE = [Depends(Authorize(Permission.NOTIFICATION_MANAGE))]

DEAD_SHOWN = 100  # the latest; the API lists them all (GET /notification-deliveries?status=dead)


def _counts(session: Session) -> dict[str, int]:
    found = session.execute(
        select(NotificationDelivery.status, func.count()).group_by(NotificationDelivery.status)
    ).all()
    return {status.value: 0 for status in DeliveryStatus} | {s: n for s, n in found}


def _dead(session: Session) -> list[tuple[NotificationDelivery, service.Told]]:
    """The dead letters, latest attempt first, with what each told and to whom."""
    rows = session.scalars(
        service.deliveries(DeliveryStatus.DEAD)
        .order_by(NotificationDelivery.last_attempt_at.desc(), NotificationDelivery.id)
        .limit(DEAD_SHOWN)
    ).all()
    told = service.told(session, rows)
    return [(row, told[row.id]) for row in rows]


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    notice: str | None = None,
    refusal: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    subscriptions = session.scalars(
        service.subscriptions(None).order_by(
            NotificationSubscription.active.desc(),
            NotificationSubscription.created_at,
            NotificationSubscription.id,
        )
    ).all()
    sites = {site_id: code for site_id, code in session.execute(select(Site.id, Site.code))}
    return render(
        request,
        "notifications.html",
        status_code,
        viewer=viewer,
        nav="notifications",
        counts=_counts(session),
        dead=_dead(session),
        dead_shown=DEAD_SHOWN,
        subscriptions=subscriptions,
        sites=sites,
        notice=notice,
        refusal=refusal,
    )


@router.get("/notifications", dependencies=MANAGE)
def notifications(
    session: SessionDep, request: Request, viewer: CurrentViewer, sent_again: int = 0
) -> HTMLResponse:
    notice = "Sent again: it goes out with the next deliveries." if sent_again else None
    return _page(request, session, viewer, notice=notice)


@router.post("/notifications/deliveries/{delivery_id}/retry", dependencies=MANAGE)
def send_again(
    session: SessionDep,
    request: Request,
    viewer: CurrentViewer,
    delivery_id: uuid.UUID,
) -> Response:
    """Send a dead letter again (the form carries only its security token, checked by the web
    router's guard); a delivery no longer dead (another admin sent it) is refused, saying so."""
    try:
        with session.begin_nested():
            service.requeue(session, delivery_id, viewer.principal.user_id)
    except VigilError as refused:
        return _page(
            request, session, viewer, refusal=refused.detail, status_code=refused.status_code
        )
    return RedirectResponse("/notifications?sent_again=1#dead-letters", status_code=303)
