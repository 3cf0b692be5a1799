"""The study summary for monitors: enrolment by status, dosing sessions, alerts by severity
with the time to acknowledge them (median, 90th percentile), and the serious adverse events with
their reporting clocks (due, reported, late). ``study_summary`` reads it (for a caller: only
their sites and the alert kinds they see), ``summary_figures`` draws it on two pages."""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.auth.principal import Principal
from app.auth.scope import only_visible_alerts, only_visible_sites
from app.exports.reports.chart import PAGE_SIZE, SEVERITY_COLOURS
from app.models import AdverseEvent, Alert, DosingSession, Participant, Site, Study
from app.participants.schemas import ParticipantStatus
from app.vocabulary import SEVERITY_ORDER, RecordStatus

SESSION_STATUSES = ("planned", "in_progress", "ended")


@dataclass(frozen=True, slots=True)
class AlertLine:
    severity: str
    count: int
    acknowledged: int
    median_minutes: float | None  # from raised (at this severity) to acknowledged
    p90_minutes: float | None


@dataclass(frozen=True, slots=True)
class SaeLine:
    subject_id: str
    site_code: str
    term: str
    site_aware_at: datetime
    due_at: datetime | None
    reported_at: datetime | None
    clock: str  # "on time", "late", "overdue" (not reported, past due), "due" (not yet)


@dataclass(frozen=True)
class StudySummary:
    study_code: str
    study_name: str
    sites: list[str]
    as_of: datetime
    enrolment: dict[str, int]
    sessions: dict[str, int]
    alerts: list[AlertLine]
    saes: list[SaeLine]


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile by linear interpolation between closest ranks (numpy's and
    the spreadsheet's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _alert_lines(alerts: list[Alert]) -> list[AlertLine]:
    lines = []
    for severity in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__, reverse=True):
        of_severity = [a for a in alerts if a.severity == severity]
        waits = [
            (a.acknowledged_at - a.severity_since).total_seconds() / 60
            for a in of_severity
            if a.acknowledged_at is not None
        ]
        lines.append(
            AlertLine(
                severity,
                len(of_severity),
                len(waits),
                percentile(waits, 0.5),
                percentile(waits, 0.9),
            )
        )
    return lines


def _clock(due: datetime | None, reported: datetime | None, now: datetime) -> str:
    if due is None:
        return ""
    if reported is not None:
        return "late" if reported > due else "on time"
    return "overdue" if now > due else "due"


def study_summary(
    session: Session, study: Study, principal: Principal | None = None
) -> StudySummary:
    """The summary of ``study``: all of it, or what ``principal`` sees (their sites, the alert
    kinds of their role)."""
    sites_stmt = select(Site).where(Site.study_id == study.id).order_by(Site.code)
    if principal is not None:
        sites_stmt = only_visible_sites(sites_stmt, principal, Site.id)
    sites = list(session.scalars(sites_stmt))
    site_ids = [site.id for site in sites]
    codes = {site.id: site.code for site in sites}
    people = list(
        session.scalars(
            select(Participant)
            .where(Participant.study_id == study.id, Participant.site_id.in_(site_ids))
            .order_by(Participant.subject_id)
        )
    )
    enrolment = Counter(p.status for p in people)
    by_id = {p.id: p for p in people}
    statuses = session.scalars(
        select(DosingSession.status).where(DosingSession.participant_id.in_(by_id))
    )
    sessions = Counter(statuses)
    alerts_stmt = select(Alert).where(Alert.participant_id.in_(by_id))
    if principal is not None:
        alerts_stmt = only_visible_alerts(alerts_stmt, principal)
    alerts = list(session.scalars(alerts_stmt))
    events = [
        event
        for event in session.scalars(
            select(AdverseEvent)
            .where(
                AdverseEvent.participant_id.in_(by_id),
                AdverseEvent.record_status == RecordStatus.VALID,
            )
            .order_by(AdverseEvent.site_aware_at)
        )
        if event.serious
    ]
    now = clock.utcnow()
    saes = []
    for event, shown in zip(events, adverse_events.present_all(session, events), strict=True):
        participant = by_id[event.participant_id]
        due = shown.sponsor_report_due_at
        saes.append(
            SaeLine(
                participant.subject_id,
                codes[participant.site_id],
                event.verbatim_term[:60],
                event.site_aware_at,
                due,
                event.sponsor_reported_at,
                _clock(due, event.sponsor_reported_at, now),
            )
        )
    return StudySummary(
        study_code=study.code,
        study_name=study.name,
        sites=[site.code for site in sites],
        as_of=now,
        enrolment={status.value: enrolment.get(status.value, 0) for status in ParticipantStatus},
        sessions={status: sessions.get(status, 0) for status in SESSION_STATUSES},
        alerts=_alert_lines(alerts),
        saes=saes,
    )


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} min"


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def summary_figures(summary: StudySummary) -> list[Figure]:
    title = (
        f"{summary.study_code}: {summary.study_name}\nsites {', '.join(summary.sites) or 'none'}"
        f"; as of {_utc(summary.as_of)}"
    )
    first = Figure(figsize=PAGE_SIZE)
    first.suptitle(title, fontsize=10)
    grid = first.add_gridspec(2, 2, left=0.14, right=0.96, top=0.86, bottom=0.06, hspace=0.4)
    enrol = first.add_subplot(grid[0, 0])
    labels = list(summary.enrolment)
    bars = enrol.barh(labels, list(summary.enrolment.values()), color="#546e7a", gid="enrolment")
    enrol.bar_label(bars, fontsize=7, padding=2)
    enrol.xaxis.set_major_locator(MaxNLocator(integer=True))
    enrol.set_title("Participants by status", fontsize=9)
    enrol.invert_yaxis()
    enrol.tick_params(labelsize=7)
    sessions = first.add_subplot(grid[0, 1])
    columns = sessions.bar(
        list(summary.sessions), list(summary.sessions.values()), color="#78909c", gid="sessions"
    )
    sessions.bar_label(columns, fontsize=7, padding=2)
    sessions.yaxis.set_major_locator(MaxNLocator(integer=True))
    sessions.set_title("Dosing sessions by status", fontsize=9)
    sessions.tick_params(labelsize=7)
    alerts = first.add_subplot(grid[1, :])
    alerts.axis("off")
    alerts.set_title(
        "Alerts by severity; time to acknowledge (from raised at that severity)", fontsize=9
    )
    rows = [
        [
            a.severity,
            str(a.count),
            str(a.acknowledged),
            _minutes(a.median_minutes),
            _minutes(a.p90_minutes),
        ]
        for a in summary.alerts
    ]
    table = alerts.table(
        cellText=rows,
        colLabels=["severity", "alerts", "acknowledged", "median", "90th percentile"],
        loc="upper center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.4)
    for index, line in enumerate(summary.alerts, start=1):
        table[index, 0].set_text_props(color=SEVERITY_COLOURS.get(line.severity, "black"))
    second = Figure(figsize=PAGE_SIZE)
    second.suptitle(title, fontsize=10)
    sae = second.add_axes((0.04, 0.04, 0.92, 0.8))
    sae.axis("off")
    sae.set_title("Serious adverse events: reporting to the sponsor", fontsize=9, loc="left")
    sae_rows = [
        [
            s.subject_id,
            s.site_code,
            s.term,
            _utc(s.site_aware_at),
            _utc(s.due_at),
            _utc(s.reported_at),
            s.clock,
        ]
        for s in summary.saes[:30]
    ] or [["none", "", "", "", "", "", ""]]
    if len(summary.saes) > 30:
        sae_rows.append([f"... and {len(summary.saes) - 30} more", "", "", "", "", "", ""])
    sae_table = sae.table(
        cellText=sae_rows,
        colLabels=["subject", "site", "term", "site aware", "report due", "reported", "clock"],
        colWidths=[0.08, 0.05, 0.33, 0.15, 0.15, 0.15, 0.09],
        loc="upper left",
        cellLoc="left",
    )
    sae_table.auto_set_font_size(False)
    sae_table.set_fontsize(7)
    sae_table.scale(1, 1.3)
    return [first, second]
