"""The study overview: for each study the caller sees, its sites, enrolment by status, the
dosing sessions in progress, of today and of this week, the open alerts by severity, the SAE
reporting clocks running and the visits out of window, all narrowed to the caller's sites by
the API's own scope rules."""

from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.auth.deps import Authorize
from app.auth.principal import Principal
from app.auth.scope import only_visible_alerts, only_visible_sites, only_visible_studies
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.models import Alert, DosingSession, Participant, Site, Study
from app.permissions import Permission
from app.web import overview_lists as lists
from app.web.templating import render
from app.web.viewer import CurrentViewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

SEVERITIES = ("critical", "warning", "info")


def _study_summary(session: Session, principal: Principal, study: Study) -> dict[str, Any]:
    sites = session.scalars(
        only_visible_sites(
            select(Site).where(Site.study_id == study.id).order_by(Site.code), principal, Site.id
        )
    ).all()
    site_ids = [site.id for site in sites]
    enrolment: Counter[str] = Counter()
    for status, count in session.execute(
        select(Participant.status, func.count())
        .where(Participant.site_id.in_(site_ids))
        .group_by(Participant.status)
    ):
        enrolment[status] = count
    in_progress = session.execute(
        select(DosingSession, Participant, Site)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(Participant.site_id.in_(site_ids), DosingSession.status == "in_progress")
        .order_by(DosingSession.started_at)
    ).all()
    by_severity = (
        select(Alert.severity, func.count())
        .where(Alert.site_id.in_(site_ids), Alert.status != "resolved")
        .group_by(Alert.severity)
    )
    alerts: Counter[str] = Counter()
    visible = only_visible_alerts(by_severity, principal)  # type: ignore[arg-type]
    for severity, count in session.execute(visible):
        alerts[severity] = count
    week = lists.sessions_this_week(session, site_ids, clock.utcnow())
    return {
        "study": study,
        "sites": sites,
        "enrolment": sorted(enrolment.items()),
        "participants": sum(enrolment.values()),
        "in_progress": in_progress,
        "alerts": [(severity, alerts.get(severity, 0)) for severity in SEVERITIES],
        "today": [planned for planned in week if planned.today],
        "week": week,
        "sae_clocks": lists.sae_clocks(session, site_ids),
        "off_window": lists.visits_out_of_window(session, site_ids),
    }


@router.get("/", dependencies=[Depends(Authorize(Permission.STUDY_READ))])
def overview(session: SessionDep, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    studies = session.scalars(
        only_visible_studies(select(Study).order_by(Study.code), viewer.principal, Study.id)
    ).all()
    summaries = [_study_summary(session, viewer.principal, study) for study in studies]
    return render(request, "overview.html", viewer=viewer, nav="overview", summaries=summaries)
