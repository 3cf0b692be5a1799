"""A record entered in error takes back what it fed, whatever its type (a vital reading, a dose,
an adverse event, a C-SSRS screen), in the transaction that marks it.

First what it fed is judged again without it (its dosing sessions, by the caller), so findings
its absence makes true (a due time it met is now missed) are raised. Then every occurrence whose
evidence names the record is withdrawn: kept, marked with when and why (the entered-in-error
reason), audited, and no longer counted. An alert left with no occurrence resolves itself (no
clinician resolved it, so ``resolved_by_id`` stays empty), except a critical alert nobody has
acknowledged: it stays open with ``evidence_entered_in_error`` set, until a clinician has seen
it. An alert that still has occurrences keeps its state; it names the first of those left at
their worst severity. See docs/alerts.md.
"""

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.alerts.evaluation import Keyed, judge_session, occurrence_hash
from app.alerts.schemas import AlertSeverity, AlertStatus
from app.audit.recorder import change_reason, record_event
from app.models import Alert, AlertOccurrence, DosingSession, OccurrenceEvidence
from app.vocabulary import SEVERITY_ORDER

# The audit records of withdrawn occurrences: entity_type, and the alert's id as entity_id.
OCCURRENCES = "alert_occurrences"


def withdraw_evidence(
    session: Session, record_id: uuid.UUID, reason: str, judged: list[Keyed]
) -> list[Alert]:
    """Withdraw the occurrences whose evidence names the record and settle their alerts;
    ``judged``: the findings of the re-judgment without the record. Returns the alerts changed."""
    session.flush()
    stmt = (
        select(AlertOccurrence)
        .join(
            OccurrenceEvidence,
            (OccurrenceEvidence.alert_id == AlertOccurrence.alert_id)
            & (OccurrenceEvidence.occurrence_hash == AlertOccurrence.occurrence_hash),
        )
        .where(OccurrenceEvidence.record_id == record_id, AlertOccurrence.withdrawn_at.is_(None))
        .order_by(AlertOccurrence.alert_id, AlertOccurrence.found_at)
    )
    withdrawn = list(session.scalars(stmt))
    if not withdrawn:
        return []
    by_alert: dict[uuid.UUID, list[AlertOccurrence]] = defaultdict(list)
    for occurrence in withdrawn:
        by_alert[occurrence.alert_id].append(occurrence)
    locked = select(Alert).where(Alert.id.in_(list(by_alert))).order_by(Alert.id).with_for_update()
    alerts = list(session.scalars(locked.execution_options(populate_existing=True)))
    now = clock.utcnow()
    for occurrence in withdrawn:
        occurrence.withdrawn_at, occurrence.withdrawn_reason = now, reason
        record_event(
            session,
            "withdraw",
            OCCURRENCES,
            str(occurrence.alert_id),  # the occurrence is after's alert_id and occurrence_hash
            after={
                "alert_id": occurrence.alert_id,
                "occurrence_hash": occurrence.occurrence_hash,
                "found_at": occurrence.found_at,
                "evidence_entered_in_error": record_id,
                "withdrawn_at": now,
                "withdrawn_reason": reason,
            },
            reason=reason,
        )
    session.flush()
    for alert in alerts:
        _settle(session, alert, len(by_alert[alert.id]), reason, judged)
    return alerts


def _settle(
    session: Session, alert: Alert, withdrawn: int, reason: str, judged: list[Keyed]
) -> None:
    """One audited change of the alert: its count, and its latest finding, its resolution or
    its mark as the occurrences left (by this alert, this transaction) decide."""
    left = set(
        session.scalars(
            select(AlertOccurrence.occurrence_hash).where(
                AlertOccurrence.alert_id == alert.id, AlertOccurrence.withdrawn_at.is_(None)
            )
        )
    )
    why = f"its evidence was entered in error: {reason}"
    unsettled = not left and alert.status != AlertStatus.RESOLVED.value
    unseen_critical = (
        alert.severity == AlertSeverity.CRITICAL.value and alert.status == AlertStatus.OPEN.value
    )
    with change_reason(session, why, "resolve" if unsettled and not unseen_critical else "update"):
        alert.occurrences -= withdrawn
        if left:
            _first_left(alert, left, judged)
        elif unsettled and unseen_critical:
            alert.evidence_entered_in_error = why
        elif unsettled:
            alert.status = AlertStatus.RESOLVED.value
            alert.resolved_at = clock.utcnow()
            alert.resolution = why


def _first_left(alert: Alert, left: set[str], judged: list[Keyed]) -> None:
    """The alert names the first of its occurrences left at their worst severity, as judged
    again, and spans the occurrences left; unchanged if none of them was (an occurrence of
    unknown evidence, say)."""
    standing = sorted(
        (
            each.finding
            for each in judged
            if each.dedup_key == alert.dedup_key and occurrence_hash(each.occurrence_key) in left
        ),
        key=lambda finding: finding.sort_key(),
    )
    if not standing:
        return
    worst = max(SEVERITY_ORDER[finding.severity] for finding in standing)
    named = next(f for f in standing if SEVERITY_ORDER[f.severity] == worst)
    alert.finding = {**named.as_dict(), "dedup_key": alert.dedup_key}
    alert.message = named.message
    if named.severity == alert.severity:
        alert.severity_since = named.at
    alert.first_found_at, alert.last_found_at = standing[0].at, standing[-1].at


def record_entered_in_error(
    session: Session, record_id: uuid.UUID, reason: str, fed: list[DosingSession]
) -> list[Alert]:
    """Judge the dosing sessions the record fed again without it (the caller has marked it),
    then withdraw what it was evidence for; returns the alerts withdrawing changed."""
    now = clock.utcnow()
    judged = [
        each for dosing_session in fed for each in judge_session(session, dosing_session, now)[1]
    ]
    return withdraw_evidence(session, record_id, reason, judged)
