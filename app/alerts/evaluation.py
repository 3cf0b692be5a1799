"""From the rules engine's findings to alerts, in the caller's transaction: a dosing session's
snapshot (app/sessions/snapshot.py) judged, its findings keyed and upserted.

The engine reports every occurrence that has become true by ``now``, history included, so an
evaluation repeats earlier occurrences. Alerts remember the occurrences they have taken in
(``AlertOccurrence``, one row each): findings are grouped by alert key and one alert is upserted
per key, only when the key has occurrences no alert with that key has taken in yet, and
``occurrences`` is the number of distinct occurrence keys the alert has seen. Re-evaluating the
same data therefore changes nothing, and a resolved alert's occurrences never reopen it.

Alert keys are the engine's dedup keys, except for findings about one record (an adverse event,
a C-SSRS screen), which are scoped to the record rather than to the session that was evaluated
(:class:`Keyed`): the same record judged by its own write, by its session or by the sweep, in or
outside a session, updates one alert per rule. See docs/alerts.md.
"""

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.alerts import service as alerts
from app.alerts.schemas import AlertSeverity, AlertStatus
from app.audit.recorder import change_reason
from app.models import Alert, AlertOccurrence, DosingSession, OccurrenceEvidence, Participant
from app.models.conflicts import insert_skipping_conflicts
from app.protocols import service as protocols
from app.rules import Finding, evaluate, evaluate_rule
from app.sessions.snapshot import (
    AlertState,
    alert_states_of,
    session_alerts_of,
    snapshot_of,
    snapshot_since,
)
from app.vocabulary import SEVERITY_ORDER

RAISED = (AlertSeverity.WARNING.value, AlertSeverity.CRITICAL.value)


def occurrence_hash(occurrence_key: str) -> str:
    return hashlib.sha256(occurrence_key.encode()).hexdigest()


def _handled(
    session: Session, alerts: list[Alert], since: datetime | None
) -> dict[uuid.UUID, set[str]]:
    """The occurrences (hashes) each alert has taken in; from ``since`` on when given, which is
    all an evaluation since then can find again. A withdrawn occurrence of a resolved alert is
    not handled: found again (a due time a late reading met is missed once that reading is
    entered in error), it is new, for the alert of its key not yet resolved."""
    handled: dict[uuid.UUID, set[str]] = defaultdict(set)
    if not alerts:
        return handled
    unresolved = [alert.id for alert in alerts if alert.status != AlertStatus.RESOLVED.value]
    stmt = select(AlertOccurrence.alert_id, AlertOccurrence.occurrence_hash).where(
        AlertOccurrence.alert_id.in_([alert.id for alert in alerts]),
        or_(AlertOccurrence.withdrawn_at.is_(None), AlertOccurrence.alert_id.in_(unresolved)),
    )
    if since is not None:
        stmt = stmt.where(AlertOccurrence.found_at >= since)
    for alert_id, hashed in session.execute(stmt):
        handled[alert_id].add(hashed)
    return handled


def _remember(session: Session, taken: list[tuple[Alert, "Keyed"]]) -> None:
    """Record the occurrences alerts took in, in one statement. A concurrent writer may have
    recorded (and counted) one already, both having judged before either committed: that row
    stands, and the alert's count gives back what this writer added for it."""
    hashes = [occurrence_hash(each.occurrence_key) for _, each in taken]
    rows = [
        {
            "alert_id": alert.id,
            "occurrence_hash": hashed,
            "found_at": each.finding.at,
            "finding": {**each.finding.as_dict(), "dedup_key": each.dedup_key},
        }
        for (alert, each), hashed in zip(taken, hashes, strict=True)
    ]
    stmt = insert_skipping_conflicts(session, AlertOccurrence).values(rows)
    returning = stmt.returning(AlertOccurrence.alert_id, AlertOccurrence.occurrence_hash)
    written = {(alert_id, hashed) for alert_id, hashed in session.execute(returning)}
    # the records behind each occurrence written here, so entering one in error finds it
    evidence = []
    for (alert, each), hashed in zip(taken, hashes, strict=True):
        if (alert.id, hashed) in written:
            evidence += [
                {"alert_id": alert.id, "occurrence_hash": hashed, "record_id": uuid.UUID(record)}
                for record in dict.fromkeys(each.finding.evidence)
            ]
    if evidence:
        session.execute(insert_skipping_conflicts(session, OccurrenceEvidence).values(evidence))
    recorded = Counter(alert_id for alert_id, _ in written)
    alerts_by_id = {alert.id: alert for alert, _ in taken}
    for alert_id, added in Counter(alert.id for alert, _ in taken).items():
        counted_elsewhere = added - recorded[alert_id]
        if counted_elsewhere:
            alert = alerts_by_id[alert_id]
            with change_reason(session, "occurrences counted by a concurrent evaluation", "update"):
                alert.occurrences -= counted_elsewhere


# --- the alert a finding belongs to ---------------------------------------------------------------

# Findings about one record (an adverse event, a C-SSRS screen) rather than about the session.
RECORD_KINDS = ("adverse_event", "cssrs")


@dataclass(frozen=True)
class Keyed:
    """A finding with the keys of the alert it belongs to.

    The engine scopes every dedup key to its snapshot's session (:class:`app.rules.DedupKey`). A
    finding about an adverse event or a C-SSRS screen is the same problem whichever path judged
    it (the record's own write, the session it falls in, the sweep, or no session at all), so its
    alert key is scoped to the record instead: ``record-id:rule`` and
    ``record-id:rule:reporting`` for a reporting clock. Other findings keep the engine's key.
    """

    finding: Finding
    dedup_key: str
    occurrence_key: str


def record_key_prefix(record_id: uuid.UUID | str) -> str:
    """What every alert key of a record's findings starts with."""
    return f"{record_id}:"


def alert_key(finding: Finding) -> str:
    key = finding.key
    if finding.kind not in RECORD_KINDS:
        return str(key)
    if key.record_id is None:
        raise ValueError(f"a {finding.kind} finding of rule {key.rule_id} names no record")
    suffix = "" if key.part is None else f":{key.part}"
    return f"{record_key_prefix(key.record_id)}{key.rule_id}{suffix}"


def keyed(findings: list[Finding]) -> list[Keyed]:
    """The warning and critical findings with their alert keys."""
    out = []
    for finding in findings:
        if finding.severity not in RAISED:
            continue
        key = alert_key(finding)
        occurrence = f"{key}@{finding.at.isoformat()}#{','.join(finding.evidence)}"
        out.append(Keyed(finding, key, occurrence))
    return out


def upsert_alerts(
    session: Session,
    found: list[Keyed],
    *,
    participant: Participant,
    dosing_session: DosingSession | None,
    protocol_version_id: uuid.UUID,
    known: list[Alert],
    since: datetime | None = None,
) -> list[Alert]:
    """Open or update one alert per dedup key that has occurrences no alert has handled yet;
    returns the alerts opened or updated. ``known`` are alerts already loaded (a session's);
    those of other keys found are looked up by key, so a record's alert opened by another path
    (or outside any session) is recognised. ``since``: the findings are all from then on."""
    if not found:
        return []
    by_key: dict[str, list[Keyed]] = defaultdict(list)
    for each in found:
        by_key[each.dedup_key].append(each)
    missing = set(by_key) - {alert.dedup_key for alert in known}
    if missing:
        stmt = select(Alert).where(Alert.dedup_key.in_(sorted(missing)))
        known = [*known, *session.scalars(stmt.order_by(Alert.first_found_at, Alert.id))]
    relevant = [alert for alert in known if alert.dedup_key in by_key]
    taken_in = _handled(session, relevant, since)
    handled: dict[str, set[str]] = defaultdict(set)
    for alert in relevant:
        handled[alert.dedup_key] |= taken_in[alert.id]
    news = {}
    for dedup_key, group in by_key.items():
        distinct = {each.occurrence_key: each for each in group}
        new = [
            each for key, each in distinct.items() if occurrence_hash(key) not in handled[dedup_key]
        ]
        if new:
            news[dedup_key] = new
    if not news:
        return []
    locked = alerts.lock_unresolved(session, list(news))
    raised = []
    taken: list[tuple[Alert, Keyed]] = []
    for dedup_key, new in news.items():
        named, span = _first_at_worst(new)
        alert, _ = alerts.upsert_from_finding(
            session,
            participant=participant,
            dosing_session=dosing_session,
            protocol_version_id=protocol_version_id,
            rule_id=named.rule_id,
            kind=named.kind,
            severity=named.severity,
            dedup_key=dedup_key,
            title=named.title,
            message=named.message,
            finding={**named.as_dict(), "dedup_key": dedup_key},
            found=span,
            new_occurrences=len(new),
            unresolved=locked,
            escalate_at_once=any(each.finding.escalate_at_once for each in new),
        )
        taken.extend((alert, each) for each in new)
        raised.append(alert)
    _remember(session, taken)
    return raised


def _first_at_worst(new: list[Keyed]) -> tuple[Finding, alerts.Span]:
    """The finding an alert names for these occurrences: the first at their worst severity;
    and when they happened (``first`` and ``last`` of any severity)."""
    worst = max(SEVERITY_ORDER[each.finding.severity] for each in new)
    order = sorted((each.finding for each in new), key=Finding.sort_key)
    named = next(f for f in order if SEVERITY_ORDER[f.severity] == worst)
    span = alerts.Span(named.at, order[0].at, order[-1].at, learnt=named.learnt_at)
    return named, span


class Judgment(NamedTuple):
    """A session judged: the alerts opened or updated, the warning and critical findings, and
    the session's alerts as they were before (loaded for the judgment)."""

    raised: list[Alert]
    found: list[Keyed]
    alerts: Sequence[AlertState]


def raise_alerts(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    kinds: Collection[str] | None = None,
    since: datetime | None = None,
) -> list[Alert]:
    """Evaluate the session at ``now`` and open or update one alert per dedup key that has
    warning or critical occurrences not handled yet; returns the alerts opened or updated.

    ``kinds``: only the rules of these kinds. ``since``: only the findings at or after it, for
    a caller that knows nothing before it has changed (new readings, all measured since)."""
    return judge_session(session, dosing_session, now, kinds, since).raised


def judge_session(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    kinds: Collection[str] | None = None,
    since: datetime | None = None,
) -> Judgment:
    """:func:`raise_alerts`, also returning the warning and critical findings judged and the
    session's alerts."""
    protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
    session.flush()  # the alerts query below must see this transaction's alerts
    alerts = alert_states_of(session, dosing_session)
    if since is None:
        snapshot = snapshot_of(session, dosing_session, now, alerts)
    else:
        snapshot = snapshot_since(session, dosing_session, now, alerts, protocol, since)
    if kinds is None:
        findings = evaluate(protocol, snapshot, since)
    else:
        rules = [rule for rule in protocol.rules if rule.kind in kinds]
        findings = [f for rule in rules for f in evaluate_rule(protocol, rule, snapshot, since)]
    found = keyed(findings)
    if not found:
        return Judgment([], [], alerts)
    participant = session.get_one(Participant, dosing_session.participant_id)
    raised = upsert_alerts(
        session,
        found,
        participant=participant,
        dosing_session=dosing_session,
        protocol_version_id=dosing_session.protocol_version_id,
        known=session_alerts_of(session, dosing_session),
        since=since,
    )
    return Judgment(raised, found, alerts)
