"""The transactional outbox: an alert change that someone subscribed to writes its event and one
delivery per matching subscription in the change's own transaction, just before it commits.

The changes are read from the audit records the transaction is about to chain
(app.audit.recorder.pending_records), so what a rolled-back savepoint undid tells nobody, and
every path that changes an alert (ingest, the sweep, escalation, a clinician's answer) is covered
without calling anything. A change becomes at most one event per alert and kind:

- ``alert.opened``: the alert was created (its state at commit: a new alert that escalated at
  once is one opened event, addressed to the medical monitor);
- ``alert.severity_raised``: a repeated finding raised its severity;
- ``alert.escalated``: nobody acknowledged a critical alert in time; now the medical monitor's;
- ``alert.disproved``: every occurrence of an unacknowledged critical alert was withdrawn;
- ``alert.acknowledged``, ``alert.resolved``: a clinician answered it.

Other updates (another occurrence of the same finding) tell nobody. The deliveries are sent after
commit by app/notifications/dispatcher.py. The listener is installed by app.listeners.install().
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app import clock
from app.audit import recorder
from app.ids import new_id
from app.models import (
    Alert,
    AuditRecord,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    Participant,
    Site,
)
from app.models.notification import DeliveryStatus
from app.notifications import messages

ALERTS = "alerts"  # the audit records' entity_type for alerts
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
# the audit action of an alert change -> its event (updates are told apart in _event_types)
_ACTION_EVENTS = {
    "create": "alert.opened",
    "escalate": "alert.escalated",
    "acknowledge": "alert.acknowledged",
    "resolve": "alert.resolved",
}
EVENT_TYPES = (
    "alert.opened",
    "alert.severity_raised",
    "alert.escalated",
    "alert.disproved",
    "alert.acknowledged",
    "alert.resolved",
)
# what a subscription is told unless it says otherwise: what needs a person to act
DEFAULT_EVENT_TYPES = ("alert.opened", "alert.severity_raised", "alert.escalated")


def _update_event(record: AuditRecord) -> str | None:
    after, before = record.after or {}, record.before or {}
    if "severity" in after:
        old = SEVERITY_RANK.get(str(before.get("severity")), -1)
        if SEVERITY_RANK.get(str(after["severity"]), -1) > old:
            return "alert.severity_raised"
    if after.get("disproved"):
        return "alert.disproved"
    return None


def alert_changes(records: Iterable[AuditRecord]) -> dict[str, list[str]]:
    """Each changed alert's id -> the events its changes make, in order, at most one of a kind;
    an alert opened in the transaction is told of once, as opened."""
    changes: dict[str, list[str]] = {}
    for record in records:
        if record.entity_type != ALERTS:
            continue
        kind = _ACTION_EVENTS.get(record.action)
        if kind is None and record.action == "update":
            kind = _update_event(record)
        if kind is None:
            continue
        kinds = changes.setdefault(record.entity_id, [])
        if kind not in kinds and "alert.opened" not in kinds:
            kinds.append(kind)
    return changes


def addressee(alert: Alert, event_type: str) -> str:
    """Whom the alert is for now: the site's clinician, or the medical monitor once escalated."""
    if event_type == "alert.escalated" or alert.escalation_level > 0:
        return "medical_monitor"
    return "clinician"


def matches(subscription: NotificationSubscription, alert: Alert, event_type: str) -> bool:
    return (
        event_type in subscription.event_types
        and (subscription.site_id is None or subscription.site_id == alert.site_id)
        and SEVERITY_RANK.get(alert.severity, 0) >= SEVERITY_RANK[subscription.min_severity]
        and (subscription.role is None or subscription.role == addressee(alert, event_type))
    )


@dataclass(frozen=True)
class _Context:
    site_code: str
    subject_id: str


def _alerts(session: Session, ids: Sequence[str]) -> dict[str, tuple[Alert, _Context]]:
    rows = session.execute(
        select(Alert, Site.code, Participant.subject_id)
        .join(Site, Site.id == Alert.site_id)
        .join(Participant, Participant.id == Alert.participant_id)
        .where(Alert.id.in_([uuid.UUID(i) for i in ids]))
    ).all()
    return {str(alert.id): (alert, _Context(code, subject)) for alert, code, subject in rows}


def enqueue(session: Session) -> int:
    """Write the events and deliveries of the transaction's alert changes; returns the number of
    deliveries written. Nothing is written when no active subscription matches."""
    changes = alert_changes(recorder.pending_records(session))
    if not changes:
        return 0
    subscriptions = list(
        session.scalars(
            select(NotificationSubscription).where(NotificationSubscription.active.is_(True))
        )
    )
    if not subscriptions:
        return 0
    now = clock.utcnow()
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for alert_id, (alert, context) in _alerts(session, list(changes)).items():
        for event_type in changes[alert_id]:
            told = [s for s in subscriptions if matches(s, alert, event_type)]
            if not told:
                continue
            event_id = new_id()
            payload = messages.payload(
                event_id,
                event_type,
                now,
                alert,
                site_code=context.site_code,
                subject_id=context.subject_id,
                addressed_to=addressee(alert, event_type),
            )
            events.append(
                {
                    "id": event_id,
                    "type": event_type,
                    "alert_id": alert.id,
                    "created_at": now,
                    "payload": payload,
                }
            )
            deliveries += [
                {
                    "id": new_id(),
                    "event_id": event_id,
                    "subscription_id": subscription.id,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for subscription in told
            ]
    if events:
        connection = session.connection()
        connection.execute(insert(NotificationEvent), events)
        connection.execute(insert(NotificationDelivery), deliveries)
    return len(deliveries)


def _enqueue_at_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        enqueue(session)


# Installed before the audit trail's own before_commit (app/listeners.py), which takes the
# records this reads; the outbox's inserts thus stay outside the chain's critical section.
SESSION_LISTENERS = (("before_commit", _enqueue_at_commit),)
