"""The time-driven sweep: the findings that become true by the clock alone, with no new data.

Two kinds of rule fire on the clock: an overdue measurement (a due time plus its grace passes
during a session in progress) and an adverse event's reporting deadline ("deadline-near", then
"deadline-passed"). The scheduler calls :func:`sweep` every few seconds, in one transaction with
:func:`app.alerts.service.escalate_overdue`; the sweep only looks at the candidates (sessions in
progress, adverse events whose reporting clock runs), never at a whole study. Occurrence keys make
it idempotent: a second sweep at the same ``now`` finds only occurrences already handled.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from app.alerts import evaluation, record_alerts
from app.dosing.schemas import DosingSessionStatus
from app.models import AdverseEvent, Alert, DosingSession, ProtocolVersion
from app.protocols import service as protocols
from app.protocols.schema import AdverseEventRule

VALID = "valid"


def in_progress(session: Session, now: datetime) -> list[DosingSession]:
    """Dosing sessions running at ``now``: started by then and not ended."""
    stmt = select(DosingSession).where(
        DosingSession.status == DosingSessionStatus.IN_PROGRESS.value,
        DosingSession.started_at.is_not(None),
        DosingSession.started_at <= now,
        DosingSession.ended_at.is_(None),
    )
    return list(session.scalars(stmt.order_by(DosingSession.started_at, DosingSession.id)))


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


def sweep_session(session: Session, dosing_session: DosingSession, now: datetime) -> list[Alert]:
    """A session in progress: its overdue measurements at ``now``."""
    return evaluation.raise_alerts(session, dosing_session, now, kinds=CLOCK_KINDS)


def sweep_adverse_event(session: Session, event: AdverseEvent, now: datetime) -> list[Alert]:
    """An adverse event whose reporting clock runs: its deadline findings at ``now``."""
    return record_alerts.raise_for_adverse_event(session, event, now)


def sweep(session: Session, now: datetime) -> list[Alert]:
    """Judge every session in progress (overdue measurements) and every running reporting clock
    at ``now``, in the caller's transaction (never committed here); returns the alerts opened
    or updated, each once. The scheduler runs the same steps, one transaction per candidate."""
    raised: dict[object, Alert] = {}
    for dosing_session in in_progress(session, now):
        for alert in sweep_session(session, dosing_session, now):
            raised.setdefault(alert.id, alert)
    for event in reporting_clocks(session):
        for alert in sweep_adverse_event(session, event, now):
            raised.setdefault(alert.id, alert)
    return list(raised.values())
