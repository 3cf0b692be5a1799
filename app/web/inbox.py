"""The alerts inbox: the alerts not yet resolved at the caller's sites (the API's listing and
scope: study-wide for the monitors, visit alerts only for a coordinator), the most urgent first
(severity, then the newest), acknowledged in place with the API's alerts service.

The page keeps itself current from the API's alert stream (static/js/inbox.js): for each event
it fetches the alert's row from here (``/alerts/{id}/row``, through the same scope check), and
after a gap it reloads the whole list (``/alerts/rows``)."""

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, case
from sqlalchemy.orm import Session, aliased

from app.alerts import history, service
from app.alerts.schemas import AlertStatus
from app.auth.deps import Authorize, ScopedAlert
from app.auth.principal import Principal
from app.auth.scope import only_visible_alerts
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import Conflict
from app.models import Alert, Participant, Site, User
from app.permissions import Permission
from app.vocabulary import SEVERITY_ORDER
from app.web.templating import render
from app.web.viewer import CurrentViewer, Viewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

LIMIT = 500  # an inbox longer than this is a problem of its own; the page says so
STREAM = "/api/v1/alerts/stream"


@dataclass(frozen=True)
class InboxRow:
    alert: Alert
    subject_id: str
    site_code: str
    zone: str
    acknowledged_by: str | None

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER[self.alert.severity]

    @property
    def values(self) -> str:
        """The observed values the alert's first occurrence at its severity names."""
        observed = (self.alert.finding or {}).get("observed") or {}
        if not isinstance(observed, dict):
            return ""
        return ", ".join(f"{code} {_shown(value)}" for code, value in observed.items())


def _shown(value: object) -> str:
    """88.0 as 88; a list as its items."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(map(_shown, value))
    return str(value)


def _rows_query() -> Select[Any]:
    acknowledger = aliased(User)
    return (
        service.listing()
        .add_columns(Participant.subject_id, Site.code, Site.timezone, acknowledger.display_name)
        .join(Participant, Participant.id == Alert.participant_id)
        .join(Site, Site.id == Alert.site_id)
        .outerjoin(acknowledger, acknowledger.id == Alert.acknowledged_by_id)
    )


def _row(found: Any) -> InboxRow:
    alert, subject_id, site_code, zone, acknowledged_by = found
    return InboxRow(alert, subject_id, site_code, zone, acknowledged_by)


def inbox_rows(session: Session, principal: Principal) -> list[InboxRow]:
    """The unresolved alerts the caller sees, most severe first, then the newest."""
    rank = case(dict(SEVERITY_ORDER), value=Alert.severity, else_=-1)
    stmt = only_visible_alerts(_rows_query(), principal)
    stmt = stmt.where(Alert.status != AlertStatus.RESOLVED.value)
    stmt = stmt.order_by(rank.desc(), Alert.first_found_at.desc(), Alert.id).limit(LIMIT + 1)
    return [_row(found) for found in session.execute(stmt)]


def _one_row(session: Session, alert_id: uuid.UUID) -> InboxRow:
    return _row(session.execute(_rows_query().where(Alert.id == alert_id)).one())


def _may(viewer: Viewer) -> dict[str, bool]:
    return {
        "acknowledge": viewer.may(Permission.ALERT_RESPOND),
        "stream": viewer.may(Permission.CLINICAL_ALERT_READ),
    }


@router.get("/alerts", dependencies=[Depends(Authorize(Permission.ALERT_READ))])
def inbox(session: SessionDep, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    # the log's head first: whatever changes after it, the stream replays (the page asks it to
    # when its first event starts later), and a row fetched twice is the same row
    head = history.head(session)
    rows = inbox_rows(session, viewer.principal)
    shown = rows[:LIMIT]
    return render(
        request,
        "inbox.html",
        viewer=viewer,
        nav="alerts",
        rows=shown,
        more=len(rows) > LIMIT,
        open_count=sum(row.alert.status == AlertStatus.OPEN.value for row in shown),
        head=head,
        stream=STREAM,
        may=_may(viewer),
    )


@router.get("/alerts/rows", dependencies=[Depends(Authorize(Permission.ALERT_READ))])
def inbox_table_rows(session: SessionDep, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    """The inbox's table body as it is now: what the page reloads after a gap in its stream."""
    rows = inbox_rows(session, viewer.principal)
    return render(request, "_inbox_rows.html", viewer=viewer, rows=rows[:LIMIT], may=_may(viewer))


@router.get("/alerts/{alert_id}/row", dependencies=[Depends(Authorize(Permission.ALERT_READ))])
def inbox_row(
    session: SessionDep, request: Request, viewer: CurrentViewer, alert: ScopedAlert
) -> HTMLResponse:
    """One alert's row as the inbox shows it (a resolved one too: the page then drops it)."""
    row = _one_row(session, alert.id)
    return render(request, "_inbox_row.html", viewer=viewer, row=row, may=_may(viewer))


@router.post(
    "/alerts/{alert_id}/acknowledge", dependencies=[Depends(Authorize(Permission.ALERT_RESPOND))]
)
def acknowledge(
    session: SessionDep, request: Request, viewer: CurrentViewer, alert: ScopedAlert
) -> Response:
    """open -> acknowledged by the caller, as POST /api/v1/alerts/{id}/acknowledge does. From
    the page (htmx) the answer is the alert's new row; from a plain form, back to the inbox."""
    notice = None
    try:
        service.acknowledge(session, alert, viewer.principal.user_id, None)
    except Conflict:
        # someone else was quicker: nothing changed; the row says who and when
        notice = f"Nothing was changed: the alert is {alert.status} already."
        if not request.headers.get("hx-request"):
            raise
    if not request.headers.get("hx-request"):
        return RedirectResponse("/alerts", status_code=303)
    session.flush()
    row = _one_row(session, alert.id)
    return render(
        request, "_inbox_row.html", viewer=viewer, row=row, may=_may(viewer), notice=notice
    )
