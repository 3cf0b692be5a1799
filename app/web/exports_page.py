"""The exports page: what the caller may pull, as links to the API's own export routes (so
each download is checked, audited and blinded there): the sponsor's SDTM datasets, Define-XML
and FHIR bulk files, the study summaries and dosing-session reports, and the audit trail."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.auth.deps import Authorize
from app.auth.scope import only_visible_participants, only_visible_studies
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.exports.fhir.stream import ResourceType
from app.exports.sdtm.metadata import DATASETS
from app.exports.sdtm.service import FileFormat
from app.models import DosingSession, Participant, Site, Study, Visit
from app.permissions import Permission
from app.web.templating import render
from app.web.viewer import CurrentViewer

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)

SESSION_LIMIT = 100  # the newest; older reports stay reachable from each session's page


@router.get("/exports", dependencies=[Depends(Authorize(Permission.REPORT_READ))])
def exports(session: SessionDep, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    principal = viewer.principal
    studies = session.scalars(
        only_visible_studies(select(Study).order_by(Study.code), principal, Study.id)
    ).all()
    started = (
        select(DosingSession, Participant, Site, Visit)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .where(DosingSession.started_at.is_not(None))
        .order_by(DosingSession.started_at.desc())
        .limit(SESSION_LIMIT)
    )
    sessions = session.execute(
        only_visible_participants(started, principal, DosingSession.participant_id)  # type: ignore[arg-type]
    ).all()
    return render(
        request,
        "exports.html",
        viewer=viewer,
        nav="exports",
        studies=studies,
        sessions=sessions,
        datasets=list(DATASETS.values()),
        formats=[f.value for f in FileFormat],
        resource_types=[r.value for r in ResourceType],
        sponsor=viewer.may(Permission.EXPORT_READ.value),
        auditor=viewer.may(Permission.AUDIT_READ.value),
    )
