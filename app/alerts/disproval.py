"""Overdue measurements that readings arriving late disprove, in the transaction of the readings.

While a tablet is offline the sweep finds the due times it does not hear of overdue. When its
backlog arrives, a reading of a missing measure measured within a due time's grace meets it: the
engine, judging the session with the backlog (the ingest's judgment), no longer finds that
occurrence. Each overdue occurrence the engine no longer finds, and that a reading of the batch
meets for every measure it named missing, is withdrawn (app/alerts/withdrawal.py: kept, audited,
no longer counted) with the reason naming when the readings were measured and when they arrived.
An alert left with none resolves itself with that reason, except a critical one nobody has
acknowledged: it stays open, ``disproved``, for a clinician. An alert with occurrences left names
the first of those. An occurrence met for only some of its missing measures stands, narrowed to
the others (audited). See docs/alerts.md.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.alerts.evaluation import Judgment, Keyed, occurrence_hash
from app.alerts.withdrawal import OCCURRENCES, Withdrawal, withdraw
from app.audit.recorder import change_reason, record_event
from app.clinical.measures import MEASURES
from app.models import Alert, AlertOccurrence, DosingSession, VitalReading
from app.rules import met_window, wording
from app.sessions.snapshot import site_zone
from app.vocabulary import RecordStatus

OVERDUE = "overdue_measurement"


# Built once (docs/architecture.md, "statements built once"): a session's overdue occurrences
# not withdrawn, found from ``since`` on.
_STANDING_OVERDUE = (
    select(AlertOccurrence)
    .join(Alert, Alert.id == AlertOccurrence.alert_id)
    .where(
        Alert.dosing_session_id == bindparam("dosing_session_id"),
        Alert.kind == OVERDUE,
        AlertOccurrence.withdrawn_at.is_(None),
        AlertOccurrence.found_at >= bindparam("since"),
    )
    .order_by(AlertOccurrence.alert_id, AlertOccurrence.found_at)
)


def disprove_overdue(
    session: Session,
    dosing_session: DosingSession,
    readings: Sequence[VitalReading],
    judgment: Judgment,
) -> list[Alert]:
    """Withdraw the session's overdue occurrences that ``readings`` (just stored) met;
    ``judgment``: of the session with them, from the earliest of them on. Returns the alerts
    changed. A session that had no overdue alert when it was judged has none to take back (one
    the judgment opened stands on what it found), so its occurrences are not looked up."""
    valid = [r for r in readings if r.record_status == RecordStatus.VALID.value]
    if not valid or not any(alert.kind == OVERDUE for alert in judgment.alerts):
        return []
    judged = judgment.found
    since = min(reading.corrected_measured_at for reading in valid)
    # a reading measured at m meets only due times whose grace ends at m or later
    values = {"dosing_session_id": dosing_session.id, "since": since}
    candidates = list(session.scalars(_STANDING_OVERDUE, values))
    if not candidates:
        return []
    standing = {occurrence_hash(each.occurrence_key): each for each in judged}
    zone = site_zone(session, dosing_session.participant_id)
    withdrawals, narrowed = [], []
    for occurrence in candidates:
        if occurrence.finding is None:
            continue
        still = standing.get(occurrence.occurrence_hash)
        if still is None:
            met = _met_by(occurrence.finding, valid, zone)
            if met is not None:
                reason, ids = met
                withdrawals.append(Withdrawal(occurrence, reason, {"met_by": ids}))
            continue
        now_missing = _missing(still.finding.as_dict())
        met_now = [code for code in _missing(occurrence.finding) if code not in now_missing]
        met = _met_by(occurrence.finding, valid, zone, met_now) if met_now else None
        if met is not None:
            narrowed.append((occurrence, still, *met))
    changed = _narrow(session, narrowed)
    changed += withdraw(session, withdrawals, _why, judged)
    return list({alert.id: alert for alert in changed}.values())


def _why(withdrawals: list[Withdrawal]) -> str:
    return "measured in time, arrived late: " + "; ".join(each.reason for each in withdrawals)


def _missing(finding: dict[str, Any]) -> list[str]:
    observed = finding.get("observed") or {}
    return [code for code in str(observed.get("missing") or "").split(", ") if code in MEASURES]


def _narrow(
    session: Session, narrowed: list[tuple[AlertOccurrence, Keyed, str, list[str]]]
) -> list[Alert]:
    """Overdue occurrences whose due time late readings met for some of the measures they named
    missing: still overdue for the others, they say so from now on (their finding, and their
    alert's message where it names them), each change audited. Returns the alerts changed."""
    if not narrowed:
        return []
    ids = sorted({occurrence.alert_id for occurrence, *_ in narrowed})
    locked = select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id).with_for_update()
    alerts = {a.id: a for a in session.scalars(locked.execution_options(populate_existing=True))}
    changed: dict[Any, Alert] = {}
    for occurrence, still, reason, met_by in narrowed:
        finding = {**still.finding.as_dict(), "dedup_key": still.dedup_key}
        record_event(
            session,
            "narrow",
            OCCURRENCES,
            str(occurrence.alert_id),
            after={
                "alert_id": occurrence.alert_id,
                "occurrence_hash": occurrence.occurrence_hash,
                "found_at": occurrence.found_at,
                "met_by": met_by,
                "was_missing": ", ".join(_missing(occurrence.finding or {})),
                "missing": ", ".join(_missing(finding)),
                "message": finding["message"],
            },
            reason=reason,
        )
        occurrence.finding = finding
        alert = alerts[occurrence.alert_id]
        named = alert.finding or {}
        if (named.get("at"), named.get("evidence")) == (finding["at"], finding["evidence"]):
            with change_reason(session, f"measured in time, arrived late: {reason}", "update"):
                alert.finding, alert.message = finding, str(finding["message"])
            changed[alert.id] = alert
    session.flush()
    return list(changed.values())


def _met_by(
    finding: dict[str, Any],
    readings: list[VitalReading],
    zone: tzinfo,
    codes: list[str] | None = None,
) -> tuple[str, list[str]] | None:
    """Why the overdue finding no longer holds for ``codes`` (default: every measure it named
    missing): its due time, when the readings that met it were measured and when they arrived
    (on the site's wall clock, ``zone``); and their ids. None unless a reading among these
    meets its due time for each of them."""
    observed = finding.get("observed") or {}
    grace, minute = observed.get("grace_minutes"), observed.get("due_minute")
    if grace is None or minute is None:
        return None
    overdue_at = datetime.fromisoformat(finding["at"])
    start, end = met_window(overdue_at, grace)
    codes = _missing(finding) if codes is None else codes
    if not codes:
        return None
    meeting: list[VitalReading] = []
    for code in codes:
        column = MEASURES[code].column
        found = sorted(
            (
                r
                for r in readings
                if start <= r.corrected_measured_at <= end and getattr(r, column) is not None
            ),
            key=lambda r: (r.corrected_measured_at, r.received_at, str(r.id)),
        )
        if not found:
            return None
        meeting.append(found[0])
    meeting = sorted(dict.fromkeys(meeting), key=lambda r: (r.corrected_measured_at, str(r.id)))
    names = wording.and_list([wording.MEASURE_NAMES[code] for code in codes])
    due = wording.moment(overdue_at - timedelta(minutes=grace), minute, zone)
    times = " and ".join(
        f"measured at {wording.clock(r.corrected_measured_at, zone)}, "
        f"arrived late at {wording.clock(r.received_at, zone)}"
        for r in meeting
    )
    return f"{wording.capitalise(names)} due at {due}: {times}", [str(r.id) for r in meeting]
