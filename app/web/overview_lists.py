"""The overview's work lists for a set of sites: the dosing sessions of today and of this week,
the SAE reporting clocks still running, and the visits out of their window, each in the site's
own calendar."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app import clock
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventRead
from app.models import AdverseEvent, DosingSession, Participant, Site, Visit
from app.models.dosing import DosingSessionStatus
from app.time_bounds import local_date, start_of_day

OPEN_SESSIONS = (DosingSessionStatus.PLANNED.value, DosingSessionStatus.IN_PROGRESS.value)
HELD = ("scheduled", "completed")  # a visit held (or to be held) on a day
LIST_LIMIT = 50  # a list this long on the overview means a site's records need attention


@dataclass(frozen=True)
class PlannedSession:
    session: DosingSession
    visit: Visit
    participant: Participant
    site: Site
    day: date  # the site's calendar day it started on, or is scheduled for
    today: bool


@dataclass(frozen=True)
class SaeClock:
    event: AdverseEventRead
    participant: Participant
    site: Site
    left: timedelta  # negative once overdue

    @property
    def overdue(self) -> bool:
        return self.left < timedelta(0)


@dataclass(frozen=True)
class OffWindowVisit:
    visit: Visit
    participant: Participant
    site: Site


def _week(day: date) -> tuple[date, date]:
    """Monday to Sunday around ``day``."""
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def sessions_this_week(
    session: Session, site_ids: list[uuid.UUID], now: datetime
) -> list[PlannedSession]:
    """Planned and running dosing sessions whose day falls in the site's current week."""
    # no site's week is more than a day off UTC's: SQL narrows, the site's calendar decides
    first, last = _week(now.date())
    rows = session.execute(
        select(DosingSession, Visit, Participant, Site)
        .join(Visit, Visit.id == DosingSession.visit_id)
        .join(Participant, Participant.id == DosingSession.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(
            Participant.site_id.in_(site_ids),
            DosingSession.status.in_(OPEN_SESSIONS),
            or_(
                DosingSession.started_at.between(
                    start_of_day(first, "UTC") - timedelta(days=1),
                    start_of_day(last, "UTC") + timedelta(days=2),
                ),
                and_(
                    DosingSession.started_at.is_(None),
                    Visit.scheduled_on.between(first - timedelta(days=1), last + timedelta(days=1)),
                ),
            ),
        )
    ).all()
    found = []
    for dosing, visit, participant, site in rows:
        today = local_date(now, site.timezone)
        start, end = _week(today)
        day = local_date(dosing.started_at, site.timezone) if dosing.started_at else None
        day = day or visit.scheduled_on
        if start <= day <= end:
            found.append(PlannedSession(dosing, visit, participant, site, day, day == today))
    return sorted(
        found, key=lambda p: (p.day, p.session.started_at or now, p.participant.subject_id)
    )


def sae_clocks(session: Session, site_ids: list[uuid.UUID]) -> list[SaeClock]:
    """Serious events not yet reported to the sponsor, the closest deadline first."""
    rows = session.execute(
        adverse_events.listing(serious=True)
        .add_columns(Participant, Site)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(Participant.site_id.in_(site_ids), AdverseEvent.sponsor_reported_at.is_(None))
    ).all()
    events = adverse_events.present_all(session, [row[0] for row in rows])
    now = clock.utcnow()
    clocks = [
        SaeClock(event, participant, site, event.sponsor_report_due_at - now)
        for event, (_, participant, site) in zip(events, rows, strict=True)
        if event.sponsor_report_due_at is not None
    ]
    return sorted(clocks, key=lambda c: c.left)


def visits_out_of_window(session: Session, site_ids: list[uuid.UUID]) -> list[OffWindowVisit]:
    """Missed visits, and visits held or scheduled outside their window, the earliest first."""
    day = func.coalesce(Visit.occurred_on, Visit.scheduled_on)
    outside = or_(
        Visit.status == "missed",
        and_(Visit.status.in_(HELD), or_(day < Visit.window_start_on, day > Visit.window_end_on)),
    )
    rows = session.execute(
        select(Visit, Participant, Site)
        .join(Participant, Participant.id == Visit.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(Participant.site_id.in_(site_ids), outside)
        .order_by(Visit.window_end_on, Participant.subject_id)
        .limit(LIST_LIMIT)
    ).all()
    return [OffWindowVisit(visit, participant, site) for visit, participant, site in rows]
