"""From the database to the rules engine and back: the snapshot of a dosing session, its findings
turned into alerts in the caller's transaction, and the supplemental dose gate.

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
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.alerts import service as alerts
from app.alerts.schemas import AlertSeverity, AlertStatus
from app.audit.recorder import change_reason
from app.clinical.cssrs import ITEMS as CSSRS_ITEMS
from app.clinical.measures import MEASURES
from app.dosing import service as dosing
from app.models import AdverseEvent as AdverseEventRow
from app.models import (
    Alert,
    AlertOccurrence,
    Assessment,
    Dose,
    DosingSession,
    Participant,
    Visit,
    VitalReading,
)
from app.rules import (
    AdverseEvent,
    CssrsScreen,
    Finding,
    GateDecision,
    OpenAlert,
    Reading,
    SessionSnapshot,
    evaluate,
    evaluate_dose_gate,
    evaluate_rule,
)
from app.rules import Dose as SnapshotDose
from app.rules.dose_gate import decide

VALID = "valid"
RAISED = (AlertSeverity.WARNING.value, AlertSeverity.CRITICAL.value)
_RANK = {
    AlertSeverity.INFO.value: 0,
    AlertSeverity.WARNING.value: 1,
    AlertSeverity.CRITICAL.value: 2,
}


_MEASURE_COLUMNS = [(code, getattr(VitalReading, m.column)) for code, m in MEASURES.items()]


def _readings(session: Session, dosing_session: DosingSession) -> list[Reading]:
    """Plain rows, not ORM objects: a session's readings are loaded at every evaluation."""
    stmt = select(
        VitalReading.id,
        VitalReading.measured_at,
        VitalReading.supplemental_oxygen,
        VitalReading.new_confusion,
        *(column for _, column in _MEASURE_COLUMNS),
    ).where(
        VitalReading.dosing_session_id == dosing_session.id,
        VitalReading.record_status == VALID,
    )
    readings = []
    for row in session.execute(stmt):
        values = {
            code: value
            for (code, _), value in zip(_MEASURE_COLUMNS, row[4:], strict=True)
            if value is not None
        }
        if values:
            readings.append(
                Reading(
                    id=str(row[0]),
                    measured_at=row[1],
                    values=values,
                    supplemental_oxygen=bool(row[2]),
                    new_confusion=bool(row[3]),
                )
            )
    return readings


def _doses(session: Session, dosing_session: DosingSession) -> list[SnapshotDose]:
    stmt = select(Dose).where(
        Dose.dosing_session_id == dosing_session.id, Dose.record_status == VALID
    )
    return [
        SnapshotDose(
            id=str(row.id),
            kind=row.kind,  # type: ignore[arg-type]
            amount_mg=row.amount_mg,
            administered_at=row.administered_at,
        )
        for row in session.scalars(stmt)
    ]


def adverse_event_of(row: AdverseEventRow) -> AdverseEvent:
    return AdverseEvent(
        id=str(row.id),
        verbatim_term=row.verbatim_term,
        serious=row.serious,
        ctcae_grade=row.ctcae_grade,
        onset_at=row.onset_at,
        site_aware_at=row.site_aware_at,
        sponsor_reported_at=row.sponsor_reported_at,
    )


def cssrs_screen_of(row: Assessment) -> CssrsScreen:
    return CssrsScreen(
        id=str(row.id),
        administered_at=row.administered_at,
        positive_items=frozenset(
            item for item, field in CSSRS_ITEMS.items() if row.data.get(field) is True
        ),
    )


def _belongs(
    column: InstrumentedAttribute[datetime],
    dosing_session_column: InstrumentedAttribute[uuid.UUID | None],
    dosing_session: DosingSession,
    now: datetime,
) -> ColumnElement[bool]:
    """Linked to the session, or dated within its time span (start to end, or to now)."""
    linked = dosing_session_column == dosing_session.id
    if dosing_session.started_at is None:
        return linked
    end = dosing_session.ended_at or now
    return or_(linked, column.between(dosing_session.started_at, end))


def _adverse_events(
    session: Session, dosing_session: DosingSession, now: datetime
) -> list[AdverseEvent]:
    stmt = select(AdverseEventRow).where(
        AdverseEventRow.participant_id == dosing_session.participant_id,
        AdverseEventRow.record_status == VALID,
        _belongs(AdverseEventRow.onset_at, AdverseEventRow.dosing_session_id, dosing_session, now),
    )
    return [adverse_event_of(row) for row in session.scalars(stmt)]


def _cssrs_screens(
    session: Session, dosing_session: DosingSession, now: datetime
) -> list[CssrsScreen]:
    stmt = select(Assessment).where(
        Assessment.participant_id == dosing_session.participant_id,
        Assessment.kind == "cssrs_screen",
        Assessment.record_status == VALID,
        _belongs(Assessment.administered_at, Assessment.dosing_session_id, dosing_session, now),
    )
    return [cssrs_screen_of(row) for row in session.scalars(stmt)]


def session_alerts_of(session: Session, dosing_session: DosingSession) -> list[Alert]:
    stmt = select(Alert).where(Alert.dosing_session_id == dosing_session.id)
    return list(session.scalars(stmt.order_by(Alert.first_found_at, Alert.id)))


def snapshot_of(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    session_alerts: list[Alert] | None = None,
) -> SessionSnapshot:
    """The session as stored: valid records only, canonical units, ids as strings; the open
    alerts are those not resolved and first found by ``now`` (pass ``session_alerts`` when they
    are already loaded)."""
    session.flush()
    if session_alerts is None:
        session_alerts = session_alerts_of(session, dosing_session)
    visit_code = session.scalar(select(Visit.code).where(Visit.id == dosing_session.visit_id))
    assert visit_code is not None
    open_alerts = [
        OpenAlert(rule_id=alert.rule_id, severity=alert.severity)  # type: ignore[arg-type]
        for alert in session_alerts
        if alert.status != AlertStatus.RESOLVED.value and alert.first_found_at <= now
    ]
    return SessionSnapshot(
        dosing_session_id=str(dosing_session.id),
        visit_code=visit_code,
        now=now,
        started_at=dosing_session.started_at,
        ended_at=dosing_session.ended_at,
        readings=_readings(session, dosing_session),
        doses=_doses(session, dosing_session),
        adverse_events=_adverse_events(session, dosing_session, now),
        cssrs_screens=_cssrs_screens(session, dosing_session, now),
        open_alerts=open_alerts,
    )


def occurrence_hash(occurrence_key: str) -> str:
    return hashlib.sha256(occurrence_key.encode()).hexdigest()


def _handled(
    session: Session, alerts: list[Alert], since: datetime | None
) -> dict[uuid.UUID, set[str]]:
    """The occurrences (hashes) each alert has taken in; from ``since`` on when given, which is
    all an evaluation since then can find again."""
    handled: dict[uuid.UUID, set[str]] = defaultdict(set)
    if not alerts:
        return handled
    stmt = select(AlertOccurrence.alert_id, AlertOccurrence.occurrence_hash).where(
        AlertOccurrence.alert_id.in_([alert.id for alert in alerts])
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
    rows = [
        {
            "alert_id": alert.id,
            "occurrence_hash": occurrence_hash(each.occurrence_key),
            "found_at": each.finding.at,
        }
        for alert, each in taken
    ]
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(AlertOccurrence).values(rows).on_conflict_do_nothing()
    recorded = Counter(session.scalars(stmt.returning(AlertOccurrence.alert_id)))
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

    The engine scopes every dedup key to its snapshot's session (``session:rule[:...]``). A
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


def alert_key(finding: Finding, snapshot: SessionSnapshot) -> str:
    if finding.kind not in RECORD_KINDS:
        return finding.dedup_key
    (record_id,) = finding.evidence
    engine_key = f"{snapshot.dosing_session_id}:{finding.rule_id}:{record_id}"
    if not finding.dedup_key.startswith(engine_key):
        raise ValueError(f"unexpected dedup key {finding.dedup_key!r} for {engine_key!r}")
    suffix = finding.dedup_key.removeprefix(engine_key)  # "" or ":reporting"
    return f"{record_key_prefix(record_id)}{finding.rule_id}{suffix}"


def keyed(findings: list[Finding], snapshot: SessionSnapshot) -> list[Keyed]:
    """The warning and critical findings with their alert keys."""
    out = []
    for finding in findings:
        if finding.severity not in RAISED:
            continue
        key = alert_key(finding, snapshot)
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
        worst = max(
            new, key=lambda e: (_RANK[e.finding.severity], e.finding.at, e.finding.sort_key())
        ).finding
        alert, _ = alerts.upsert_from_finding(
            session,
            participant=participant,
            dosing_session=dosing_session,
            protocol_version_id=protocol_version_id,
            rule_id=worst.rule_id,
            kind=worst.kind,
            severity=worst.severity,
            dedup_key=dedup_key,
            title=worst.title,
            message=worst.message,
            finding={**worst.as_dict(), "dedup_key": dedup_key},
            found_at=worst.at,
            new_occurrences=len(new),
            unresolved=locked,
        )
        taken.extend((alert, each) for each in new)
        raised.append(alert)
    _remember(session, taken)
    return raised


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
    protocol = dosing.protocol_of(session, dosing_session)
    session.flush()  # the alerts query below must see this transaction's alerts
    session_alerts = session_alerts_of(session, dosing_session)
    snapshot = snapshot_of(session, dosing_session, now, session_alerts)
    if kinds is None:
        findings = evaluate(protocol, snapshot, since)
    else:
        rules = [rule for rule in protocol.rules if rule.kind in kinds]
        findings = [f for rule in rules for f in evaluate_rule(protocol, rule, snapshot, since)]
    found = keyed(findings, snapshot)
    if not found:
        return []
    participant = session.get(Participant, dosing_session.participant_id)
    assert participant is not None
    return upsert_alerts(
        session,
        found,
        participant=participant,
        dosing_session=dosing_session,
        protocol_version_id=dosing_session.protocol_version_id,
        known=session_alerts,
        since=since,
    )


# --- the supplemental dose gate -----------------------------------------------------------------


def dose_gate(session: Session, dosing_session: DosingSession, now: datetime) -> GateDecision:
    """May the supplemental dose be given at ``now``? Judged on what was known by ``now``."""
    protocol = dosing.protocol_of(session, dosing_session)
    return evaluate_dose_gate(protocol, _known_at(session, dosing_session, now))


def _known_at(session: Session, dosing_session: DosingSession, at: datetime) -> SessionSnapshot:
    snapshot = snapshot_of(session, dosing_session, at)
    # as_of leaves out open alerts (it cannot date them); those first found by `at` still count
    return replace(snapshot.as_of(at), open_alerts=snapshot.open_alerts)


def clinical_gate_reasons(
    session: Session, dosing_session: DosingSession, at: datetime
) -> list[str]:
    """Why the gate's dose_gate rules (readings, open alerts) close it at ``at``; the structural
    reasons (window, amounts, doses already given) are the dosing service's protocol checks,
    which a deviation reason answers."""
    protocol = dosing.protocol_of(session, dosing_session)
    snapshot = _known_at(session, dosing_session, at)
    full = decide(protocol, snapshot, protocol.rules_of_kind("dose_gate"))
    structural = set(decide(protocol, snapshot, ()).reasons)
    return [reason for reason in full.reasons if reason not in structural]
