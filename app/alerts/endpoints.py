import uuid

from fastapi import APIRouter, Depends

from app.alerts import occurrences, service
from app.alerts.schemas import (
    AlertAcknowledge,
    AlertDetail,
    AlertRead,
    AlertResolve,
    AlertSeverity,
    AlertStatus,
    OccurrencePage,
)
from app.auth.deps import Authorize, CurrentPrincipal, ScopedAlert
from app.auth.scope import only_visible_alerts
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import Alert as AlertRow
from app.pagination import Page, PageDep, paginate
from app.permissions import Permission

router = APIRouter(tags=["alerts"], route_class=CheckedRoute)


@router.get(
    "/alerts",
    response_model=Page[AlertRead],
    dependencies=[Depends(Authorize(Permission.ALERT_READ))],
)
def list_alerts(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: AlertStatus | None = None,
    severity: AlertSeverity | None = None,
    dosing_session_id: uuid.UUID | None = None,
    participant_id: uuid.UUID | None = None,
) -> dict[str, object]:
    """Alerts of the caller's sites (study-wide for the monitors), oldest first; a coordinator
    sees only the visit alerts (visit_missed)."""
    stmt = service.listing(
        status=status,
        severity=severity,
        dosing_session_id=dosing_session_id,
        participant_id=participant_id,
    )
    stmt = only_visible_alerts(stmt, principal)
    items, cursor = paginate(session, stmt, AlertRow.id, page)
    return {"items": items, "next_cursor": cursor}


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    dependencies=[Depends(Authorize(Permission.ALERT_READ))],
)
def get_alert(session: SessionDep, alert: ScopedAlert) -> dict[str, object]:
    """The alert, the SDTM codes of the measures its rule reads, and its occurrences (oldest
    first, withdrawn ones included, with their values, thresholds and evidence): the first
    page, the rest from /alerts/{alert_id}/occurrences."""
    return occurrences.detail(session, alert)


@router.get(
    "/alerts/{alert_id}/occurrences",
    response_model=OccurrencePage,
    dependencies=[Depends(Authorize(Permission.ALERT_READ))],
)
def list_occurrences(session: SessionDep, alert: ScopedAlert, page: PageDep) -> dict[str, object]:
    """The alert's occurrences, oldest first (the time each finding became true), withdrawn ones
    included with when and why."""
    return occurrences.page_of(session, alert, page)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertRead,
    dependencies=[Depends(Authorize(Permission.ALERT_RESPOND))],
)
def acknowledge_alert(
    session: SessionDep, principal: CurrentPrincipal, alert: ScopedAlert, data: AlertAcknowledge
) -> AlertRow:
    """open -> acknowledged: the caller has seen the alert and is acting on it."""
    return service.acknowledge(session, alert, principal.user_id, data.note)


@router.post(
    "/alerts/{alert_id}/resolve",
    response_model=AlertRead,
    dependencies=[Depends(Authorize(Permission.ALERT_RESPOND))],
)
def resolve_alert(
    session: SessionDep, principal: CurrentPrincipal, alert: ScopedAlert, data: AlertResolve
) -> AlertRow:
    """open or acknowledged -> resolved, saying how."""
    return service.resolve(session, alert, principal.user_id, data.resolution)
