"""The time-driven sweep: the findings that become true by the clock alone, with no new data.

Three kinds of finding fire on the clock: an overdue measurement (a due time plus its grace
passes during a session in progress), an adverse event's reporting deadline ("deadline-near",
then "deadline-passed") and a visit window closing without an outcome (visit_windows.py). The
scheduler calls :func:`sweep` every few seconds, in one transaction with
:func:`app.alerts.service.escalate_overdue`; the sweep only looks at the candidates (sessions in
progress, adverse events whose reporting clock runs, scheduled visits whose window closed), never
at a whole study. Occurrence keys make
it idempotent: a second sweep at the same ``now`` finds only occurrences already handled.

A session's sweep can also start where the last one stopped (:func:`plan`): what the clock alone
makes overdue between two sweeps can only begin at the moments the protocol's schedule fixes
(:func:`app.rules.overdue_between`), and every other change (a reading, a dose, a record entered
in error) is judged by the write that makes it. So a session with no such moment since its last
sweep is left alone, and the others are judged from there on.
"""

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from app.alerts import evaluation, record_alerts, visit_windows
from app.models import AdverseEvent, Alert, Dose, DosingSession, ProtocolVersion
from app.models.dosing import DosingSessionStatus
from app.protocols import service as protocols
from app.protocols.schema import AdverseEventRule
from app.rules import overdue_between
from app.vocabulary import RecordStatus

VALID = RecordStatus.VALID.value


def _running(now: datetime) -> ColumnElement[bool]:
    return and_(
        DosingSession.status == DosingSessionStatus.IN_PROGRESS.value,
        DosingSession.started_at.is_not(None),
        DosingSession.started_at <= now,
        DosingSession.ended_at.is_(None),
    )


def in_progress(session: Session, now: datetime) -> list[DosingSession]:
    """Dosing sessions running at ``now``: started by then and not ended."""
    stmt = select(DosingSession).where(_running(now))
    return list(session.scalars(stmt.order_by(DosingSession.started_at, DosingSession.id)))


@dataclass
class SweepPlan:
    """The sessions in progress at ``now``, and those of them a sweep must judge, each with the
    moment its sweep starts from (None: the whole session)."""

    running: list[uuid.UUID] = field(default_factory=list)
    to_sweep: dict[uuid.UUID, datetime | None] = field(default_factory=dict)


def plan(session: Session, now: datetime, swept_until: Mapping[uuid.UUID, datetime]) -> SweepPlan:
    """Which sessions in progress at ``now`` a sweep must judge, given when each was last swept
    (``swept_until``, that sweep's ``now``): one never swept, whole; one with a moment when a
    measurement may become overdue in [last sweep, ``now``), from its last sweep on; the rest
    not at all (nothing can have become overdue by the clock since)."""
    stmt = (
        select(DosingSession.id, DosingSession.protocol_version_id, Dose.administered_at)
        .outerjoin(
            Dose,
            and_(
                Dose.dosing_session_id == DosingSession.id,
                Dose.kind == "initial",
                Dose.record_status == VALID,
            ),
        )
        .where(_running(now))
        .order_by(DosingSession.started_at, DosingSession.id)
    )
    initial_doses: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    versions: dict[uuid.UUID, uuid.UUID] = {}
    for session_id, version_id, dosed_at in session.execute(stmt):
        versions[session_id] = version_id
        if dosed_at is not None:
            initial_doses[session_id].append(dosed_at)
    result = SweepPlan(running=list(versions))
    for session_id, version_id in versions.items():
        since = swept_until.get(session_id)
        if since is None:
            result.to_sweep[session_id] = None
            continue
        protocol = protocols.definition_of(session, version_id)
        if any(
            overdue_between(protocol, dosed_at, since, now)
            for dosed_at in initial_doses[session_id]
        ):
            result.to_sweep[session_id] = since
    return result


def _deadline_rules(session: Session) -> list[AdverseEventRule]:
    """The adverse_event rules with a reporting deadline, over every stored protocol version (a
    handful; their definitions are parsed once per process)."""
    return [
        rule
        for version in session.scalars(select(ProtocolVersion))
        for rule in protocols.definition(version).rules_of_kind("adverse_event")
        if isinstance(rule, AdverseEventRule) and rule.reporting_deadline_hours is not None
    ]


def _may_match(rule: AdverseEventRule) -> ColumnElement[bool]:
    """What SQL can tell of the rule's criteria; special-interest terms are matched by the engine
    (normalised substrings), so they do not narrow the query and over-select instead."""
    criteria: list[ColumnElement[bool]] = []
    if rule.when.serious is not None:
        count = func.json_array_length(AdverseEvent.seriousness_criteria)
        criteria.append(count > 0 if rule.when.serious else count == 0)
    if rule.when.min_ctcae_grade is not None:
        criteria.append(AdverseEvent.ctcae_grade >= rule.when.min_ctcae_grade)
    return and_(true(), *criteria)


def reporting_clocks(session: Session) -> list[AdverseEvent]:
    """Valid adverse events with no sponsor report that may match a rule with a reporting
    deadline: those whose clock is running (or has run out without a report)."""
    rules = _deadline_rules(session)
    if not rules:
        return []
    stmt = select(AdverseEvent).where(
        AdverseEvent.record_status == VALID,
        AdverseEvent.sponsor_reported_at.is_(None),
        or_(*(_may_match(rule) for rule in rules)),
    )
    return list(session.scalars(stmt.order_by(AdverseEvent.site_aware_at, AdverseEvent.id)))


# The rules a session's sweep judges: the only ones that fire by the clock alone. The others
# depend on records, and were judged when those records arrived.
CLOCK_KINDS = frozenset({"overdue_measurement"})


def sweep_session(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """A session in progress: its overdue measurements at ``now`` (only those from ``since`` on,
    when given)."""
    return evaluation.raise_alerts(session, dosing_session, now, kinds=CLOCK_KINDS, since=since)


def sweep_adverse_event(session: Session, event: AdverseEvent, now: datetime) -> list[Alert]:
    """An adverse event whose reporting clock runs: its deadline findings at ``now``."""
    return record_alerts.raise_for_adverse_event(session, event, now)


def sweep(session: Session, now: datetime) -> list[Alert]:
    """Judge every session in progress (overdue measurements), every running reporting clock
    and every visit whose window has closed (app/alerts/visit_windows.py) at ``now``, in the
    caller's transaction (never committed here); returns the alerts opened or updated, each
    once. The scheduler runs the same steps, one transaction per candidate."""
    raised: dict[object, Alert] = {}
    for dosing_session in in_progress(session, now):
        for alert in sweep_session(session, dosing_session, now):
            raised.setdefault(alert.id, alert)
    for event in reporting_clocks(session):
        for alert in sweep_adverse_event(session, event, now):
            raised.setdefault(alert.id, alert)
    for visit_id in visit_windows.closed_windows(session, now):
        for alert in visit_windows.flag_missed(session, visit_id, now):
            raised.setdefault(alert.id, alert)
    return list(raised.values())
