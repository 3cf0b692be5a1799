"""Alerts from one clinical record: an adverse event or a C-SSRS screen, judged when it is
written (created, corrected) and by the sweep while its reporting clock runs.

A record that belongs to a dosing session (linked to it, or dated within its span: the same test
the session's snapshot uses) is judged on that session's snapshot, under the protocol version
the session runs under, so the alert reads the same whichever path opened it. A record outside
every session is judged alone under the participant's protocol version (as the adverse events
service finds its reporting hours). Only the rules of the record's kind are evaluated. Alert keys
of record findings are scoped to the record (see :class:`app.alerts.evaluation.Keyed`), so each
rule opens at most one alert per record whichever path judges it, and a repeated evaluation
changes nothing.

A record entered in error takes back what it raised as every record type does
(:mod:`app.alerts.withdrawal`): the sessions it belonged to are judged again without it and the
occurrences it was evidence for are withdrawn.
"""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from app import clock
from app.alerts import evaluation, withdrawal
from app.models import AdverseEvent, Alert, Assessment, DosingSession, Participant
from app.protocols import service as protocols
from app.protocols.schema import Protocol
from app.rules import Finding, SessionSnapshot, evaluate_rule
from app.rules.snapshot import AdverseEvent as SnapshotEvent
from app.rules.snapshot import CssrsScreen as SnapshotScreen
from app.sessions.snapshot import (
    adverse_event_of,
    cssrs_screen_of,
    session_alerts_of,
    site_zone,
    snapshot_of,
)
from app.vocabulary import RecordStatus

VALID = RecordStatus.VALID.value
CSSRS_SCREEN = "cssrs_screen"
# The snapshot of a record judged outside every dosing session: the engine scopes its keys to
# this id, which evaluation.alert_key replaces by the record's own id.
NO_SESSION = "no-session"


def _sessions_of(
    session: Session,
    participant_id: uuid.UUID,
    linked_id: uuid.UUID | None,
    at: datetime,
    now: datetime,
) -> list[DosingSession]:
    """The participant's dosing sessions the record belongs to: the one it is linked to, and any
    whose span (start to end, or to ``now`` while running) holds ``at``; the snapshot's test."""
    ended_after: ColumnElement[bool] = DosingSession.ended_at >= at
    if at <= now:
        ended_after = or_(ended_after, DosingSession.ended_at.is_(None))
    spans = DosingSession.started_at.is_not(None) & (DosingSession.started_at <= at) & ended_after
    belongs = or_(DosingSession.id == linked_id, spans) if linked_id is not None else spans
    stmt = select(DosingSession).where(DosingSession.participant_id == participant_id, belongs)
    return list(session.scalars(stmt.order_by(DosingSession.started_at, DosingSession.id)))


def _judge(
    session: Session,
    kind: str,
    participant_id: uuid.UUID,
    linked_id: uuid.UUID | None,
    at: datetime,
    alone: SnapshotEvent | SnapshotScreen,
    now: datetime,
) -> list[Alert]:
    """Evaluate the rules of ``kind`` on each session the record belongs to, or on the record
    alone outside every session, and open or update their alerts."""
    session.flush()  # the look-ups below must see the record as just written
    participant = session.get_one(Participant, participant_id)
    raised: list[Alert] = []
    dosing_sessions = _sessions_of(session, participant_id, linked_id, at, now)
    for dosing_session in dosing_sessions:
        known = session_alerts_of(session, dosing_session)
        snapshot = snapshot_of(session, dosing_session, now, known)
        protocol = protocols.definition_of(session, dosing_session.protocol_version_id)
        raised += evaluation.upsert_alerts(
            session,
            evaluation.keyed(_findings(protocol, kind, snapshot)),
            participant=participant,
            dosing_session=dosing_session,
            protocol_version_id=dosing_session.protocol_version_id,
            known=known,
        )
    if dosing_sessions:
        return raised
    protocol = protocols.definition_of(session, participant.protocol_version_id)
    snapshot = SessionSnapshot(
        dosing_session_id=NO_SESSION,
        visit_code="",  # no visit: only event rules are judged, and they read no dosing
        now=now,
        timezone=site_zone(session, participant_id),
        adverse_events=[alone] if isinstance(alone, SnapshotEvent) else [],
        cssrs_screens=[alone] if isinstance(alone, SnapshotScreen) else [],
    )
    return evaluation.upsert_alerts(
        session,
        evaluation.keyed(_findings(protocol, kind, snapshot)),
        participant=participant,
        dosing_session=None,
        protocol_version_id=participant.protocol_version_id,
        known=[],
    )


def _findings(protocol: Protocol, kind: str, snapshot: SessionSnapshot) -> list[Finding]:
    rules = protocol.rules_of_kind(kind)
    return [finding for rule in rules for finding in evaluate_rule(protocol, rule, snapshot)]


def raise_for_adverse_event(session: Session, event: AdverseEvent, now: datetime) -> list[Alert]:
    """Judge the protocol's adverse_event rules on a valid event (its reporting clock included)
    and open or update their alerts; returns the alerts opened or updated."""
    if event.record_status != VALID:
        return []
    return _judge(
        session,
        "adverse_event",
        event.participant_id,
        event.dosing_session_id,
        event.onset_at,
        adverse_event_of(event),
        now,
    )


def raise_for_cssrs_screen(session: Session, screen: Assessment, now: datetime) -> list[Alert]:
    """Judge the protocol's cssrs rules on a valid C-SSRS screen; other assessments raise none."""
    if screen.kind != CSSRS_SCREEN or screen.record_status != VALID:
        return []
    return _judge(
        session,
        "cssrs",
        screen.participant_id,
        screen.dosing_session_id,
        screen.administered_at,
        cssrs_screen_of(screen),
        now,
    )


def withdraw_for_entered_in_error(
    session: Session, record: AdverseEvent | Assessment, reason: str
) -> list[Alert]:
    """The record was just marked entered in error: judge the dosing sessions it belonged to
    again without it and withdraw the occurrences it was evidence for
    (:mod:`app.alerts.withdrawal`); returns the alerts withdrawing changed."""
    at = record.onset_at if isinstance(record, AdverseEvent) else record.administered_at
    session.flush()
    fed = _sessions_of(session, record.participant_id, record.dosing_session_id, at, clock.utcnow())
    return withdrawal.record_entered_in_error(session, record.id, reason, fed)
