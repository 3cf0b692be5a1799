"""Alerts: opened (or updated) from rule findings, acknowledged, resolved, escalated when a
critical alert waits too long. Every change is audited with its reason."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock, metrics
from app.alerts.schemas import AlertSeverity, AlertStatus
from app.audit.recorder import change_reason
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Alert, DosingSession, Participant
from app.protocols import service as protocols
from app.vocabulary import SEVERITY_ORDER

OPEN, ACKNOWLEDGED, RESOLVED = (s.value for s in AlertStatus)
# escalation levels, in the order of the protocol's alerting.escalation
SITE_CLINICIAN, MEDICAL_MONITOR = 0, 1


def _acknowledge_by(
    session: Session, protocol_version_id: uuid.UUID, severity: AlertSeverity, found_at: datetime
) -> datetime | None:
    """found_at + the protocol's acknowledgement time for the severity; None for info alerts."""
    alerting = protocols.definition_of(session, protocol_version_id).alerting
    minutes = alerting.acknowledge_within_minutes.get(severity.value)  # type: ignore[call-overload]
    return None if minutes is None else found_at + timedelta(minutes=minutes)


def lock_unresolved(session: Session, dedup_keys: Sequence[str]) -> dict[str, Alert]:
    """The alerts not yet resolved with these dedup keys, by key, locked for this transaction
    (FOR UPDATE on PostgreSQL; in id order, one statement for all) and read as they are now:
    a concurrent writer may have changed one since this session loaded it."""
    stmt = select(Alert).where(Alert.dedup_key.in_(dedup_keys), Alert.status != RESOLVED)
    stmt = stmt.order_by(Alert.id).with_for_update().execution_options(populate_existing=True)
    alerts = session.scalars(stmt)
    return {alert.dedup_key: alert for alert in alerts}


@dataclass(frozen=True)
class Span:
    """When the occurrences a finding stands for happened: the one its message names, and the
    earliest and latest of them all (a batch may hold several, of several severities)."""

    named: datetime
    first: datetime
    last: datetime
    # when the server learnt of the named occurrence (a late reading's receipt): the escalation
    # clock starts then; None: at ``named``
    learnt: datetime | None = None

    @classmethod
    def of(cls, at: datetime) -> "Span":
        return cls(at, at, at)

    @property
    def clock_start(self) -> datetime:
        return self.named if self.learnt is None else max(self.named, self.learnt)


def _escalate_at_once(session: Session, alert: Alert) -> None:
    """A critical alert whose rule asks for it goes to the medical monitor now."""
    if (
        alert.severity != AlertSeverity.CRITICAL.value
        or alert.status != OPEN
        or alert.escalation_level != SITE_CLINICIAN
    ):
        return
    reason = f"rule {alert.rule_id} escalates at once; escalated to the medical monitor"
    with change_reason(session, reason, "escalate"):
        alert.escalation_level = MEDICAL_MONITOR
        alert.escalated_at = clock.utcnow()


def _update(
    session: Session,
    alert: Alert,
    severity: AlertSeverity,
    message: str,
    finding: dict[str, Any],
    found: Span,
    new_occurrences: int,
    escalate_at_once: bool = False,
) -> None:
    """A repeated finding: count its occurrences and widen the alert's span; raise (never lower)
    severity. The message and finding stay those of the first occurrence at the alert's
    severity: an escalation names the first occurrence at the new one, a later occurrence at the
    same severity is only counted, one measured earlier (a backlog arriving late) takes its
    place. ``alert`` is locked and current, so concurrent counts add up. A raise to a critical
    severity whose rule escalates at once escalates the alert."""
    with change_reason(session, f"rule {alert.rule_id} found again", "update"):
        alert.first_found_at = min(alert.first_found_at, found.first)
        alert.last_found_at = max(alert.last_found_at, found.last)
        alert.occurrences += new_occurrences
        rank, current = SEVERITY_ORDER[severity], SEVERITY_ORDER[alert.severity]
        if rank < current or (rank == current and found.named >= alert.severity_since):
            return
        alert.severity = severity.value
        alert.severity_since = found.named
        alert.message, alert.finding = message, finding
        if alert.status == OPEN:
            deadline = _acknowledge_by(
                session, alert.protocol_version_id, severity, found.clock_start
            )
            if deadline is not None and (
                alert.acknowledge_by is None or deadline < alert.acknowledge_by
            ):
                alert.acknowledge_by = deadline
    if escalate_at_once:
        _escalate_at_once(session, alert)


def upsert_from_finding(
    session: Session,
    *,
    participant: Participant,
    dosing_session: DosingSession | None,
    protocol_version_id: uuid.UUID,
    rule_id: str,
    kind: str,
    severity: AlertSeverity | str,
    dedup_key: str,
    title: str,
    message: str,
    finding: dict[str, Any],
    found: Span,
    new_occurrences: int = 1,
    unresolved: Mapping[str, Alert] | None = None,
    escalate_at_once: bool = False,
) -> tuple[Alert, bool]:
    """The alert of a finding and whether it is new: a not-yet-resolved alert with the same
    dedup key (rule and session) is updated, otherwise a new open alert is created. Runs in the
    caller's transaction, beside the reading or event that caused the finding.

    ``found``: when the occurrences the finding stands for happened. ``new_occurrences``: how
    many occurrences not counted yet the finding stands for; a new alert starts at it, an update
    adds it. ``unresolved``: the caller's :func:`lock_unresolved` of several keys at once, this
    one among them. ``escalate_at_once``: the finding's rule sends a critical alert to the
    medical monitor at once. The acknowledgement deadline counts from ``found.clock_start``."""
    severity = AlertSeverity(severity)
    locked = unresolved if unresolved is not None else lock_unresolved(session, [dedup_key])
    existing = locked.get(dedup_key)
    if existing is not None:
        _update(
            session, existing, severity, message, finding, found, new_occurrences, escalate_at_once
        )
        return existing, False
    alert = Alert(
        participant_id=participant.id,
        dosing_session_id=dosing_session.id if dosing_session is not None else None,
        site_id=participant.site_id,
        protocol_version_id=protocol_version_id,
        rule_id=rule_id,
        kind=kind,
        severity=severity.value,
        status=OPEN,
        dedup_key=dedup_key,
        title=title,
        message=message,
        finding=finding,
        first_found_at=found.first,
        severity_since=found.named,
        last_found_at=found.last,
        occurrences=new_occurrences,
        acknowledge_by=_acknowledge_by(session, protocol_version_id, severity, found.clock_start),
        escalation_level=SITE_CLINICIAN,
    )
    try:
        # A concurrent writer (another process, PostgreSQL) may have opened the alert since the
        # look-up: the partial unique index refuses the second one; update the first instead.
        with session.begin_nested(), change_reason(session, f"rule {rule_id} found", "create"):
            session.add(alert)
    except IntegrityError:
        existing = lock_unresolved(session, [dedup_key]).get(dedup_key)
        if existing is None:
            raise
        _update(
            session, existing, severity, message, finding, found, new_occurrences, escalate_at_once
        )
        return existing, False
    if escalate_at_once:
        _escalate_at_once(session, alert)
    return alert, True


def _lock(session: Session, alert: Alert) -> None:
    """Read the alert again, locked for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    transaction holds the write lock), so its state is judged as it is now: of two clinicians
    acting on it at once through two processes, the second waits and then sees the first's."""
    session.refresh(alert, with_for_update=True)


def acknowledge(session: Session, alert: Alert, user_id: uuid.UUID, note: str | None) -> Alert:
    """open -> acknowledged, recording who, when and their note."""
    _lock(session, alert)
    if alert.status != OPEN:
        raise Conflict(f"alert {alert.id} is {alert.status}; only an open alert is acknowledged")
    with change_reason(session, note or "alert acknowledged", "acknowledge"):
        alert.status = ACKNOWLEDGED
        alert.acknowledged_at = clock.utcnow()
        alert.acknowledged_by_id = user_id
        alert.acknowledgement_note = note
    waited = alert.acknowledged_at - alert.severity_since
    metrics.observe_acknowledgement(session, alert.severity, waited.total_seconds())
    return alert


def resolve(session: Session, alert: Alert, user_id: uuid.UUID, resolution: str) -> Alert:
    """open or acknowledged -> resolved, recording who, when and how."""
    if not resolution or not resolution.strip():
        raise InvalidInput("give the resolution: how the alert was dealt with")
    _lock(session, alert)
    if alert.status == RESOLVED:
        raise Conflict(f"alert {alert.id} is already resolved")
    with change_reason(session, resolution, "resolve"):
        alert.status = RESOLVED
        alert.resolved_at = clock.utcnow()
        alert.resolved_by_id = user_id
        alert.resolution = resolution.strip()
    return alert


def escalate_overdue(session: Session, now: datetime) -> list[Alert]:
    """Critical alerts still open past their acknowledgement deadline go from the site clinician
    to the medical monitor. Idempotent: an alert escalates once; concurrent schedulers on
    PostgreSQL skip the rows another one is escalating."""
    stmt = (
        select(Alert)
        .where(
            Alert.severity == AlertSeverity.CRITICAL.value,
            Alert.status == OPEN,
            Alert.escalation_level == SITE_CLINICIAN,
            Alert.acknowledge_by.is_not(None),
            Alert.acknowledge_by <= now,
        )
        .order_by(Alert.id)
        .with_for_update(skip_locked=True)
    )
    overdue = list(session.scalars(stmt))
    for alert in overdue:
        reason = (
            f"not acknowledged by {alert.acknowledge_by:%Y-%m-%d %H:%M} UTC; "
            "escalated to the medical monitor"
        )
        with change_reason(session, reason, "escalate"):
            alert.escalation_level = MEDICAL_MONITOR
            alert.escalated_at = now
    return overdue


def get(session: Session, alert_id: uuid.UUID) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return alert


def listing(
    *,
    status: AlertStatus | None = None,
    severity: AlertSeverity | None = None,
    dosing_session_id: uuid.UUID | None = None,
    participant_id: uuid.UUID | None = None,
) -> Select[Alert]:
    stmt = select(Alert)
    if status is not None:
        stmt = stmt.where(Alert.status == status.value)
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity.value)
    if dosing_session_id is not None:
        stmt = stmt.where(Alert.dosing_session_id == dosing_session_id)
    if participant_id is not None:
        stmt = stmt.where(Alert.participant_id == participant_id)
    return stmt
