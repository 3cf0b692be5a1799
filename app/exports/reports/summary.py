"""The study summary for monitors: enrolment by status, dosing sessions, alerts by severity
with the time to acknowledge them (median, 90th percentile), and the serious adverse events with
their reporting clocks (due, reported, late). ``study_summary`` reads it (for a caller: only
their sites and the alert kinds they see); ``summary_pages.summary_figures`` draws it on two
pages."""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.auth.principal import Principal
from app.auth.scope import only_visible_alerts, only_visible_sites
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
