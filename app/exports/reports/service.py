"""Session reports and study summaries as files: for a caller (what their role and sites see),
audited as the export of the caller that pulled them, and for a whole study package
(``write_study_reports``)."""

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.auth.principal import Principal
from app.exports.reports.session_data import SessionReport, session_report
from app.exports.reports.summary import StudySummary, study_summary
from app.models import DosingSession, Participant, Study
from app.permissions import Permission, allows, sees_alert_kind

EXPORTED = "export_report"


def report_for(
    session: Session, dosing_session: DosingSession, principal: Principal
) -> SessionReport:
    """The report as ``principal`` may read it: the alert kinds of their role, the signatures
    of notes only for a reader of notes (the site was checked when the session was loaded)."""
    return session_report(
        session,
        dosing_session,
        sees_alert_kind=lambda kind: sees_alert_kind(principal.role, kind),
        sees_notes=allows(principal.role, Permission.NOTE_READ),
    )


# The drawing modules are imported on first use: matplotlib takes over a second to import, which
# the server's and every CLI command's start-up would otherwise pay.


def session_pdf(report: SessionReport) -> bytes:
    from app.exports.reports.chart import chart_figure
    from app.exports.reports.listing import listing_figure
    from app.exports.reports.render import DRAWING, pdf_bytes

    title = f"{report.study_code} {report.subject_id} {report.visit} session report"
    with DRAWING:
        return pdf_bytes([chart_figure(report), listing_figure(report)], title)


def session_png(report: SessionReport) -> bytes:
    from app.exports.reports.chart import chart_figure
    from app.exports.reports.render import DRAWING, png_bytes

    with DRAWING:
        return png_bytes(chart_figure(report))


def summary_pdf(summary: StudySummary) -> bytes:
    from app.exports.reports.render import DRAWING, pdf_bytes
    from app.exports.reports.summary_pages import summary_figures

    with DRAWING:
        return pdf_bytes(summary_figures(summary), f"{summary.study_code} study summary")


def audit_session_report(session: Session, report: SessionReport, file_format: str) -> None:
    """The report pulled is an audit event of the caller: which session, which format."""
    after = {
        "report": "session",
        "format": file_format,
        "study": report.study_code,
        "subject_id": report.subject_id,
    }
    record_event(session, EXPORTED, "dosing_sessions", str(report.session_id), after=after)


def audit_summary(session: Session, study: Study, summary: StudySummary) -> None:
    """The summary pulled is an audit event of the caller, naming the sites it covered."""
    after = {
        "report": "study_summary",
        "format": "pdf",
        "study": study.code,
        "sites": summary.sites,
    }
    record_event(session, EXPORTED, "studies", str(study.id), after=after)


def session_file_name(report: SessionReport, extension: str) -> str:
    visit = report.visit.split(" ", 1)[0]
    return f"{report.study_code}-{report.subject_id}-{visit}-session-report.{extension}"


def audit_study_reports(session: Session, study: Study, files: int) -> None:
    """The whole study's reports written (``vigil reports``): an audit event of the operator."""
    after = {"report": "study_reports", "format": "pdf", "study": study.code, "files": files}
    record_event(session, EXPORTED, "studies", str(study.id), after=after)


def write_study_reports(session: Session, study: Study, out_dir: Path) -> list[Path]:
    """The study summary and every dosing session's report (PDF) in ``out_dir/reports/``, whole
    study, as a study package holds them (no arm is in any of them); the paths written."""
    directory = out_dir / "reports"
    directory.mkdir(parents=True, exist_ok=True)
    summary = directory / f"{study.code}-summary.pdf"
    summary.write_bytes(summary_pdf(study_summary(session, study)))
    written = [summary]
    sessions = session.scalars(
        select(DosingSession)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .where(Participant.study_id == study.id, DosingSession.started_at.is_not(None))
        .order_by(Participant.subject_id, DosingSession.started_at)
    )
    for dosing_session in sessions:
        report = session_report(session, dosing_session)
        path = directory / session_file_name(report, "pdf")
        path.write_bytes(session_pdf(report))
        written.append(path)
    return written
