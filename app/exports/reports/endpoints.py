"""GET /api/v1/exports/sessions/{id}/report.pdf and .png, GET /api/v1/exports/studies/{code}/
summary.pdf: a dosing session's report and a study's summary for monitors (docs/exports.md,
"Session reports"). A session of another site is as missing (404) as one that does not exist;
each report pulled is an audit event of the caller."""

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.auth.deps import Authorize, CurrentPrincipal, ScopedDosingSession
from app.auth.scope import study_visible
from app.checked_input import CheckedRoute
from app.db import SessionDep
from app.errors import NotFound
from app.exports.reports import service
from app.exports.reports.summary import study_summary
from app.exports.sdtm.service import study_by_code
from app.permissions import Permission

router = APIRouter(tags=["exports"], route_class=CheckedRoute)

PDF, PNG = "application/pdf", "image/png"


def _file(body: bytes, media_type: str, name: str) -> Response:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


@router.get(
    "/exports/sessions/{dosing_session_id}/report.pdf",
    summary="A dosing session's report: vitals against the protocol's limits, doses, alerts; "
    "attestations, signatures and alerts listed (two pages)",
    response_class=Response,
    responses={200: {"content": {PDF: {}}}, 404: {"description": "no such session in your sites"}},
    dependencies=[Depends(Authorize(Permission.REPORT_READ))],
)
def session_report_pdf(
    dosing_session: ScopedDosingSession, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    report = service.report_for(session, dosing_session, principal)
    service.audit_session_report(session, report, "pdf")
    return _file(service.session_pdf(report), PDF, service.session_file_name(report, "pdf"))


@router.get(
    "/exports/sessions/{dosing_session_id}/report.png",
    summary="The chart page of a dosing session's report as a PNG (for the web client)",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}, 404: {"description": "no such session in your sites"}},
    dependencies=[Depends(Authorize(Permission.REPORT_READ))],
)
def session_report_png(
    dosing_session: ScopedDosingSession, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    report = service.report_for(session, dosing_session, principal)
    service.audit_session_report(session, report, "png")
    return _file(service.session_png(report), PNG, service.session_file_name(report, "png"))


@router.get(
    "/exports/studies/{code}/summary.pdf",
    summary="A study's summary: enrolment, sessions, alerts by severity and time to "
    "acknowledge, serious adverse events and their reporting clocks (your sites only)",
    response_class=Response,
    responses={200: {"content": {PDF: {}}}, 404: {"description": "no such study in your sites"}},
    dependencies=[Depends(Authorize(Permission.REPORT_READ))],
)
def study_summary_pdf(code: str, session: SessionDep, principal: CurrentPrincipal) -> Response:
    try:
        study = study_by_code(session, code)
    except NotFound:
        study = None
    if study is None or not study_visible(session, principal, study.id):
        raise NotFound(f"no study has the code {code!r}; GET /api/v1/studies lists the studies")
    summary = study_summary(session, study, principal)
    service.audit_summary(session, study, summary)
    return _file(service.summary_pdf(summary), PDF, f"{study.code}-summary.pdf")
