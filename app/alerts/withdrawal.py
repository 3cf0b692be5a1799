"""Taking back alert occurrences that turned out not to hold, in the transaction of the write that
shows it: a record entered in error (whatever its type: a vital reading, a dose, an adverse
event, a C-SSRS screen) takes back what it was evidence for; readings that arrive late take back
the overdue due times they met (app/alerts/disproval.py).

A withdrawn occurrence is kept, marked with when and why, audited, and no longer counted. An
alert left with no occurrence resolves itself (no clinician resolved it, so ``resolved_by_id``
stays empty), except a critical alert nobody has acknowledged: it stays open with ``disproved``
set, until a clinician has seen it. An alert that still has occurrences keeps its state and
severity; it names the first of those left at their worst severity. See docs/alerts.md.

For a record entered in error, what it fed is judged again without it first (its dosing
sessions, by the caller), so findings its absence makes true (a due time it met is now missed)
are raised, and an occurrence it alone had disproved counts again (:func:`reinstate_found_again`).
"""

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class Withdrawal:
    """One occurrence to take back: why (``reason``, kept on the row and its audit record), and
    what shows it (``shown_by``: fields added to the audit record, e.g. the record entered in
    error or the readings that met a due time)."""

    occurrence: AlertOccurrence
    reason: str
    shown_by: Mapping[str, Any]


def withdraw(
    session: Session,
    withdrawals: Sequence[Withdrawal],
    why: Callable[[list[Withdrawal]], str],
    judged: list[Keyed],
) -> list[Alert]:
    """Withdraw the occurrences, each audited, then settle their alerts in one audited change
    each, saying ``why`` (of the alert's withdrawals); ``judged``: findings judged just now,
    for occurrences stored without their finding. Returns the alerts changed."""
    if not withdrawals:
        return []
    by_alert: dict[uuid.UUID, list[Withdrawal]] = defaultdict(list)
    for each in withdrawals:
        by_alert[each.occurrence.alert_id].append(each)
    locked = select(Alert).where(Alert.id.in_(list(by_alert))).order_by(Alert.id).with_for_update()
    alerts = list(session.scalars(locked.execution_options(populate_existing=True)))
    now = clock.utcnow()
    for each in withdrawals:
        occurrence = each.occurrence
        occurrence.withdrawn_at, occurrence.withdrawn_reason = now, each.reason
        record_event(
            session,
            "withdraw",
            OCCURRENCES,
            str(occurrence.alert_id),  # the occurrence is after's alert_id and occurrence_hash
            after={
                "alert_id": occurrence.alert_id,
                "occurrence_hash": occurrence.occurrence_hash,
                "found_at": occurrence.found_at,
                **each.shown_by,
                "withdrawn_at": now,
                "withdrawn_reason": each.reason,
            },
            reason=each.reason,
        )
    session.flush()
    for alert in alerts:
        _settle(session, alert, len(by_alert[alert.id]), why(by_alert[alert.id]), judged)
    return alerts


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
    shown_by = {"evidence_entered_in_error": record_id}
    withdrawals = [Withdrawal(each, reason, shown_by) for each in session.scalars(stmt)]
    why = f"its evidence was entered in error: {reason}"
    return withdraw(session, withdrawals, lambda _: why, judged)


def _settle(session: Session, alert: Alert, withdrawn: int, why: str, judged: list[Keyed]) -> None:
    """One audited change of the alert: its count, and its latest finding, its resolution or
    its mark as the occurrences left (by this alert, this transaction) decide."""
    left = list(
        session.scalars(
            select(AlertOccurrence).where(
                AlertOccurrence.alert_id == alert.id, AlertOccurrence.withdrawn_at.is_(None)
            )
        )
    )
    unsettled = not left and alert.status != AlertStatus.RESOLVED.value
    unseen_critical = (
        alert.severity == AlertSeverity.CRITICAL.value and alert.status == AlertStatus.OPEN.value
    )
    with change_reason(session, why, "resolve" if unsettled and not unseen_critical else "update"):
        alert.occurrences -= withdrawn
        if left:
            _first_left(alert, left, judged)
        elif unsettled and unseen_critical:
            alert.disproved = why
        elif unsettled:
            alert.status = AlertStatus.RESOLVED.value
            alert.resolved_at = clock.utcnow()
            alert.resolution = why


def _sort_key(finding: Mapping[str, Any]) -> tuple[datetime, str, str, tuple[str, ...], str, str]:
    """``Finding.sort_key`` of a stored finding."""
    return (
        datetime.fromisoformat(finding["at"]),
        finding["rule_id"],
        finding["dedup_key"],
        tuple(finding["evidence"]),
        finding.get("variant") or "",
        finding["message"],
    )


def _first_left(alert: Alert, left: list[AlertOccurrence], judged: list[Keyed]) -> None:
    """The alert spans the occurrences left and names the first of them at their worst
    severity: as judged just now where it was, otherwise as stored with the occurrence (none
    before migration 0009); its finding is unchanged if none of them is known."""
    alert.first_found_at = min(occurrence.found_at for occurrence in left)
    alert.last_found_at = max(occurrence.found_at for occurrence in left)
    again: dict[str, dict[str, Any]] = {
        occurrence_hash(each.occurrence_key): {
            **each.finding.as_dict(),
            "dedup_key": alert.dedup_key,
        }
        for each in judged
        if each.dedup_key == alert.dedup_key
    }
    known = [again.get(o.occurrence_hash) or o.finding for o in left]
    standing = sorted((finding for finding in known if finding), key=_sort_key)
    if not standing:
        return
    worst = max(SEVERITY_ORDER[finding["severity"]] for finding in standing)
    named = next(f for f in standing if SEVERITY_ORDER[f["severity"]] == worst)
    alert.finding = {**named, "dedup_key": alert.dedup_key}
    alert.message = named["message"]
    if named["severity"] == alert.severity:
        alert.severity_since = datetime.fromisoformat(named["at"])


def reinstate_found_again(
    session: Session,
    fed: list[DosingSession],
    record_id: uuid.UUID,
    reason: str,
    judged: list[Keyed],
) -> list[Alert]:
    """Withdrawn occurrences of the sessions' alerts not yet resolved that the engine finds again
    (``judged``) count again, each audited: an overdue due time that a late reading met, once
    that reading is entered in error. (Nothing else withdrawn can be found again: its evidence
    is a record entered in error, which no snapshot holds. A resolved alert's withdrawn
    occurrences found again are new, for the alert of their key not yet resolved:
    ``evaluation._handled``.) Returns the alerts changed."""
    found = {occurrence_hash(each.occurrence_key) for each in judged}
    if not fed or not found:
        return []
    stmt = (
        select(AlertOccurrence)
        .join(Alert, Alert.id == AlertOccurrence.alert_id)
        .where(
            Alert.dosing_session_id.in_([dosing_session.id for dosing_session in fed]),
            Alert.status != AlertStatus.RESOLVED.value,
            AlertOccurrence.withdrawn_at.is_not(None),
            AlertOccurrence.occurrence_hash.in_(sorted(found)),
        )
        .order_by(AlertOccurrence.alert_id, AlertOccurrence.found_at)
    )
    again = list(session.scalars(stmt))
    if not again:
        return []
    by_alert: dict[uuid.UUID, int] = defaultdict(int)
    for occurrence in again:
        by_alert[occurrence.alert_id] += 1
    locked = select(Alert).where(Alert.id.in_(list(by_alert))).order_by(Alert.id).with_for_update()
    alerts = list(session.scalars(locked.execution_options(populate_existing=True)))
    why = f"what disproved it was entered in error: {reason}"
    for occurrence in again:
        record_event(
            session,
            "reinstate",
            OCCURRENCES,
            str(occurrence.alert_id),
            after={
                "alert_id": occurrence.alert_id,
                "occurrence_hash": occurrence.occurrence_hash,
                "found_at": occurrence.found_at,
                "record_entered_in_error": record_id,
                "had_been_withdrawn_at": occurrence.withdrawn_at,
                "had_been_withdrawn_for": occurrence.withdrawn_reason,
                "withdrawn_at": None,
                "withdrawn_reason": None,
            },
            reason=why,
        )
        occurrence.withdrawn_at, occurrence.withdrawn_reason = None, None
    session.flush()
    for alert in alerts:
        left = list(
            session.scalars(
                select(AlertOccurrence).where(
                    AlertOccurrence.alert_id == alert.id, AlertOccurrence.withdrawn_at.is_(None)
                )
            )
        )
        with change_reason(session, why, "update"):
            alert.occurrences += by_alert[alert.id]
            alert.disproved = None
            _first_left(alert, left, judged)
    return alerts


def record_entered_in_error(
    session: Session, record_id: uuid.UUID, reason: str, fed: list[DosingSession]
) -> list[Alert]:
    """Judge the dosing sessions the record fed again without it (the caller has marked it),
    count again what only it had disproved, then withdraw what it was evidence for; returns the
    alerts changed."""
    now = clock.utcnow()
    judged = [
        each for dosing_session in fed for each in judge_session(session, dosing_session, now).found
    ]
    reinstated = reinstate_found_again(session, fed, record_id, reason, judged)
    withdrawn = withdraw_evidence(session, record_id, reason, judged)
    return list({alert.id: alert for alert in [*reinstated, *withdrawn]}.values())
