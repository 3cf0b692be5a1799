"""Visit windows that closed without an outcome: the sweep marks such a visit missed and opens a
``visit_missed`` alert for its participant (no dosing session), which the site's coordinators see
and answer as well as its clinicians (app/permissions.py: VISIT_ALERT_KINDS).

A window closes at the end of its last day in the site's time zone, so a visit is missed once
the site's date is past ``window_end_on``. A visit whose dosing session has started is being held
(and its end completes it), so it is never marked missed. Idempotent: a missed visit is no longer
a candidate, and the alert's dedup key is the visit's.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from app.alerts import service as alerts
from app.audit.recorder import change_reason
from app.models import Alert, DosingSession, Participant, Site, Visit
from app.models.dosing import DosingSessionStatus
from app.time_bounds import local_date, start_of_day

KIND = "visit_missed"
RULE_ID = "visit-window"
SEVERITY = "warning"


def closed_windows(session: Session, now: datetime) -> list[uuid.UUID]:
    """Scheduled visits whose window has closed at their site by ``now``, in window order."""
    # no time zone is more than a day ahead of UTC: SQL narrows, the site's date decides
    latest_end = now.date() + timedelta(days=1)
    started = exists().where(
        DosingSession.visit_id == Visit.id,
        DosingSession.status != DosingSessionStatus.PLANNED.value,
    )
    stmt = (
        select(Visit.id, Visit.window_end_on, Site.timezone)
        .join(Participant, Participant.id == Visit.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(and_(Visit.status == "scheduled", Visit.window_end_on < latest_end, ~started))
        .order_by(Visit.window_end_on, Visit.id)
    )
    return [
        visit_id
        for visit_id, window_end_on, timezone in session.execute(stmt)
        if local_date(now, timezone) > window_end_on
    ]


def flag_missed(session: Session, visit_id: uuid.UUID, now: datetime) -> list[Alert]:
    """Mark one closed-window visit missed (audited, with the reason) and open its alert; the
    visit is re-read locked, so a concurrent outcome or session start wins."""
    visit = session.get(Visit, visit_id, with_for_update=True, populate_existing=True)
    if visit is None or visit.status != "scheduled":
        return []
    participant = session.get_one(Participant, visit.participant_id)
    site = session.get_one(Site, participant.site_id)
    if local_date(now, site.timezone) <= visit.window_end_on:
        return []
    closed_at = start_of_day(visit.window_end_on + timedelta(days=1), site.timezone)
    message = (
        f"Visit {visit.code} ({visit.name}) of participant {participant.subject_id} was not held "
        f"in its window {visit.window_start_on.isoformat()} to {visit.window_end_on.isoformat()} "
        f"(site time, {site.timezone}); it is recorded as missed"
    )
    reason = f"window closed on {visit.window_end_on.isoformat()} without an outcome"
    with change_reason(session, reason, "missed"):
        visit.status = "missed"
        visit.status_reason = reason
    alert, _ = alerts.upsert_from_finding(
        session,
        participant=participant,
        dosing_session=None,
        protocol_version_id=visit.protocol_version_id,
        rule_id=RULE_ID,
        kind=KIND,
        severity=SEVERITY,
        dedup_key=f"{KIND}:{visit.id}",
        title=f"Visit {visit.code} missed",
        message=message,
        finding={
            "visit_id": str(visit.id),
            "visit_code": visit.code,
            "window_start_on": visit.window_start_on.isoformat(),
            "window_end_on": visit.window_end_on.isoformat(),
            "scheduled_on": visit.scheduled_on.isoformat(),
            "timezone": site.timezone,
            "closed_at": closed_at.isoformat(),
            "evidence": [str(visit.id)],
        },
        found=alerts.Span.of(closed_at),
    )
    return [alert]
