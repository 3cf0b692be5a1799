"""A dosing session's snapshot, read from the database: what the rules engine judges.

Valid records only (entered-in-error ones are left out), canonical units, ids as strings. The
alerts (raising and replaying), the dose gate and the views that explain a session all read a
session through :func:`snapshot_of`, so they judge the same data.
"""

import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, ColumnElement, bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.clinical.cssrs import ITEMS as CSSRS_ITEMS
from app.clinical.measures import MEASURES
from app.models import AdverseEvent as AdverseEventRow
from app.models import (
    Alert,
    Assessment,
    Dose,
    DosingSession,
    Participant,
    Site,
    Visit,
    VitalReading,
)
from app.models.alert import AlertStatus
from app.protocols.schema import Protocol
from app.rules import AdverseEvent, CssrsScreen, OpenAlert, Reading, SessionSnapshot
from app.rules import Dose as SnapshotDose
from app.rules.horizon import ReadingWindow, reading_window, window_suffices
from app.vocabulary import RecordStatus

VALID = RecordStatus.VALID.value
CSSRS_SCREEN = "cssrs_screen"  # an assessment's kind (app/assessments/schemas.py)

# The snapshot's own statements are Core statements of the tables, run on the session's
# connection: their rows are plain values, and the ORM's handling of a statement, which costs
# more than running one, is skipped (docs/architecture.md, "The snapshot's plain queries").
_READING = VitalReading.__table__.c
_DOSE = Dose.__table__.c
_MEASURE_COLUMNS = [(code, _READING[m.column]) for code, m in MEASURES.items()]


# The readings of a window are looked up by their stored measured_at, which is a device's clock:
# those of devices off by more than this are looked up whatever their time, and all are then
# kept or left out on the server's clock.
WINDOW_MARGIN = timedelta(minutes=10)


# Statements built once, their values bound at execution: these run at every evaluation of a
# session (docs/architecture.md, "statements built once").
_SESSION_ID: BindParameter[uuid.UUID] = bindparam("dosing_session_id")

_READINGS = select(
    _READING.id,
    _READING.measured_at,
    _READING.supplemental_oxygen,
    _READING.new_confusion,
    _READING.received_at,
    _READING.device_clock_offset_seconds,
    *(column for _, column in _MEASURE_COLUMNS),
).where(_READING.dosing_session_id == _SESSION_ID, _READING.record_status == VALID)


def _window_clauses(baseline: bool) -> ColumnElement[bool]:
    """A window's readings (from ``start``, and between ``baseline_start`` and ``baseline_end``
    if ``baseline``), the margin for devices' clocks included."""
    margin = WINDOW_MARGIN.total_seconds()
    offset = _READING.device_clock_offset_seconds
    found = [_READING.measured_at >= bindparam("start"), offset < -margin, offset > margin]
    if baseline:
        found.append(
            _READING.measured_at.between(bindparam("baseline_start"), bindparam("baseline_end"))
        )
    return or_(*found)


_IN_WINDOW = {baseline: _READINGS.where(_window_clauses(baseline)) for baseline in (False, True)}


def _window_values(window: ReadingWindow) -> dict[str, datetime]:
    values = {"start": window.start - WINDOW_MARGIN}
    if window.baseline is not None:
        start, end = window.baseline
        values |= {"baseline_start": start - WINDOW_MARGIN, "baseline_end": end + WINDOW_MARGIN}
    return values


def _readings(
    session: Session,
    dosing_session: DosingSession,
    known_by: datetime | None = None,
    window: ReadingWindow | None = None,
) -> list[Reading]:
    """Plain rows, not ORM objects: a session's readings are loaded at every evaluation. With
    ``known_by``, those measured and received by then; with ``window``, those it holds. A
    reading's time is on the server's clock: measured_at less its device's clock offset where
    known (the stored measured_at stays as the device reported it; docs/devices.md)."""
    stmt = _READINGS
    values: dict[str, Any] = {"dosing_session_id": dosing_session.id}
    if window is not None:
        stmt = _IN_WINDOW[window.baseline is not None]
        values |= _window_values(window)
    if known_by is not None:
        stmt = stmt.where(_READING.received_at <= known_by)
    readings = []
    for row in session.connection().execute(stmt, values):
        measures = {
            code: value
            for (code, _), value in zip(_MEASURE_COLUMNS, row[6:], strict=True)
            if value is not None
        }
        measured_at = row[1] if row[5] is None else row[1] - timedelta(seconds=row[5])
        if known_by is not None and measured_at > known_by:
            continue
        if window is not None and not window.holds(measured_at):
            continue
        if measures:
            readings.append(
                Reading(
                    id=str(row[0]),
                    measured_at=measured_at,
                    values=measures,
                    supplemental_oxygen=bool(row[2]),
                    new_confusion=bool(row[3]),
                    received_at=row[4],
                )
            )
    return readings


_DOSES = select(_DOSE.id, _DOSE.kind, _DOSE.amount_mg, _DOSE.administered_at).where(
    _DOSE.dosing_session_id == _SESSION_ID, _DOSE.record_status == VALID
)


def _doses(session: Session, dosing_session: DosingSession) -> list[SnapshotDose]:
    rows = session.connection().execute(_DOSES, {"dosing_session_id": dosing_session.id})
    return [
        SnapshotDose(
            id=str(dose_id),
            kind=kind,
            amount_mg=amount_mg,
            administered_at=administered_at,
        )
        for dose_id, kind, amount_mg, administered_at in rows
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
        Assessment.kind == CSSRS_SCREEN,
        Assessment.record_status == VALID,
        _belongs(Assessment.administered_at, Assessment.dosing_session_id, dosing_session, now),
    )
    return [cssrs_screen_of(row) for row in session.scalars(stmt)]


# session.info: each participant's site's zone, looked up once a session
_ZONES = "site_zones"


def site_zone(session: Session, participant_id: uuid.UUID) -> ZoneInfo:
    """The time zone of the participant's site, in which messages give times."""
    zones: dict[uuid.UUID, ZoneInfo] = session.info.setdefault(_ZONES, {})
    if participant_id not in zones:
        stmt = select(Site.timezone).join(Participant, Participant.site_id == Site.id)
        name = session.scalar(stmt.where(Participant.id == participant_id))
        zones[participant_id] = ZoneInfo(name or "UTC")
    return zones[participant_id]


@dataclass(frozen=True)
class _Context:
    """What a snapshot needs beside the session's own records: its visit code, and whether the
    participant has any valid adverse event or C-SSRS screen at all (most have none, and then
    neither is looked for)."""

    visit_code: str
    any_adverse_event: bool
    any_cssrs_screen: bool


_PARTICIPANT = Participant.__table__.c
_VISIT = Visit.__table__.c
_SITE = Site.__table__.c
_ADVERSE_EVENTS = AdverseEventRow.__table__
_ASSESSMENTS = Assessment.__table__


def _any_of_participant(table: Any, *criteria: ColumnElement[bool]) -> Any:
    return (
        select(table.c.id)
        .where(table.c.participant_id == _PARTICIPANT.id, table.c.record_status == VALID, *criteria)
        .exists()
    )


_CONTEXT = (
    select(
        _VISIT.code,
        _SITE.timezone,
        _any_of_participant(_ADVERSE_EVENTS),
        _any_of_participant(_ASSESSMENTS, _ASSESSMENTS.c.kind == CSSRS_SCREEN),
    )
    .select_from(Participant.__table__)
    .join(Site.__table__, _SITE.id == _PARTICIPANT.site_id)
    .join(Visit.__table__, _VISIT.participant_id == _PARTICIPANT.id)
    .where(_PARTICIPANT.id == bindparam("participant_id"), _VISIT.id == bindparam("visit_id"))
)


def _context(session: Session, dosing_session: DosingSession) -> _Context:
    """The session's visit code, in one query with the site's zone (for :func:`site_zone`) and
    whether the participant has adverse events or C-SSRS screens to judge."""
    values = {"participant_id": dosing_session.participant_id, "visit_id": dosing_session.visit_id}
    code, zone, adverse_events, cssrs_screens = session.connection().execute(_CONTEXT, values).one()
    session.info.setdefault(_ZONES, {})[dosing_session.participant_id] = ZoneInfo(zone or "UTC")
    return _Context(str(code), bool(adverse_events), bool(cssrs_screens))


_SESSION_ALERTS = (
    select(Alert)
    .where(Alert.dosing_session_id == _SESSION_ID)
    .order_by(Alert.first_found_at, Alert.id)
)


def session_alerts_of(session: Session, dosing_session: DosingSession) -> list[Alert]:
    return list(session.scalars(_SESSION_ALERTS, {"dosing_session_id": dosing_session.id}))


class AlertState(typing.Protocol):
    """What a judgment reads of a session's alert (an ``Alert``, or its plain row)."""

    @property
    def kind(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def first_found_at(self) -> datetime: ...
    @property
    def resolved_at(self) -> datetime | None: ...


_ALERT = Alert.__table__.c
_ALERT_STATES = (
    select(
        _ALERT.kind,
        _ALERT.rule_id,
        _ALERT.severity,
        _ALERT.status,
        _ALERT.first_found_at,
        _ALERT.resolved_at,
    )
    .where(_ALERT.dosing_session_id == _SESSION_ID)
    .order_by(_ALERT.first_found_at, _ALERT.id)
)


def alert_states_of(session: Session, dosing_session: DosingSession) -> Sequence[AlertState]:
    """The session's alerts as plain rows, for a judgment that may raise nothing: the ``Alert``
    objects (:func:`session_alerts_of`) are loaded only by one that raises or updates one."""
    values = {"dosing_session_id": dosing_session.id}
    return session.connection().execute(_ALERT_STATES, values).all()


def snapshot_of(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    session_alerts: Sequence[AlertState] | None = None,
    readings_known_by: datetime | None = None,
) -> SessionSnapshot:
    """The session as stored: valid records only, canonical units, ids as strings; the open
    alerts are those not resolved and first found by ``now`` (pass ``session_alerts`` when they
    are already loaded); with ``readings_known_by``, the readings measured and received by
    then."""
    session.flush()
    readings = _readings(session, dosing_session, readings_known_by)
    return _snapshot(
        session, dosing_session, now, session_alerts, _doses(session, dosing_session), readings
    )


def snapshot_since(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    session_alerts: Sequence[AlertState],
    protocol: Protocol,
    since: datetime,
) -> SessionSnapshot:
    """What an evaluation of the findings since ``since`` is given: :func:`snapshot_of` with
    only the readings of the rules' lookback (app/rules/horizon.py), or with all of them where
    those are not enough. A session's evaluation after new readings so costs what its recent
    readings do, not what all of them do."""
    session.flush()
    doses = _doses(session, dosing_session)
    window = reading_window(protocol, since, doses)
    if window is None:
        readings = _readings(session, dosing_session)
        return _snapshot(session, dosing_session, now, session_alerts, doses, readings)
    readings = _readings(session, dosing_session, window=window)
    snapshot = _snapshot(session, dosing_session, now, session_alerts, doses, readings)
    if window_suffices(protocol, snapshot, since, window):
        return snapshot
    return replace(snapshot, readings=_readings(session, dosing_session))


def _snapshot(
    session: Session,
    dosing_session: DosingSession,
    now: datetime,
    session_alerts: Sequence[AlertState] | None,
    doses: list[SnapshotDose],
    readings: list[Reading],
) -> SessionSnapshot:
    if session_alerts is None:
        session_alerts = session_alerts_of(session, dosing_session)
    context = _context(session, dosing_session)
    open_alerts = [
        OpenAlert(rule_id=alert.rule_id, severity=alert.severity)  # type: ignore[arg-type]
        for alert in session_alerts
        if alert.status != AlertStatus.RESOLVED.value and alert.first_found_at <= now
    ]
    return SessionSnapshot(
        dosing_session_id=str(dosing_session.id),
        visit_code=context.visit_code,
        now=now,
        timezone=site_zone(session, dosing_session.participant_id),
        started_at=dosing_session.started_at,
        ended_at=dosing_session.ended_at,
        readings=readings,
        doses=doses,
        adverse_events=(
            _adverse_events(session, dosing_session, now) if context.any_adverse_event else []
        ),
        cssrs_screens=(
            _cssrs_screens(session, dosing_session, now) if context.any_cssrs_screen else []
        ),
        open_alerts=open_alerts,
    )


def known_at(session: Session, dosing_session: DosingSession, at: datetime) -> SessionSnapshot:
    """What a supplemental dose given at ``at`` is judged on (the dose gate, and recording the
    dose): the readings the server knew at ``at`` (measured and received by then), the alerts
    open then (first found by ``at``, not resolved by then, acknowledged or not), and every
    valid dose recorded (the dose limits count them all, whenever given). Entered-in-error
    records are left out, even when marked after ``at``: a correction applies to the past too,
    as the alerts they caused are withdrawn."""
    alerts = session_alerts_of(session, dosing_session)
    snapshot = snapshot_of(session, dosing_session, at, alerts, readings_known_by=at)
    open_then = [
        OpenAlert(rule_id=alert.rule_id, severity=alert.severity)  # type: ignore[arg-type]
        for alert in alerts
        if alert.first_found_at <= at and (alert.resolved_at is None or alert.resolved_at > at)
    ]
    return replace(snapshot.as_of(at), doses=snapshot.doses, open_alerts=open_then)
