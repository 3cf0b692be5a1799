"""Alert events read back from the audit trail.

Every change of an alert writes an audit record in the change's own transaction, and the audit
chain numbers its records in commit order (appends are serialised by a PostgreSQL advisory lock
held to commit, or SQLite's write lock). So the alerts' audit records are a durable, gap-free,
ordered event log: an event's id is its audit record's sequence, and "every event after id N" is
exact, whichever process wrote them and whichever process a client reconnects to.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.alerts.schemas import AlertRead
from app.models import Alert, AuditRecord

ALERTS = "alerts"  # the audit records' entity_type for alerts
# the audit action of an alert change -> the event type a client sees
EVENT_TYPES = {
    "create": "alert.opened",
    "update": "alert.updated",
    "acknowledge": "alert.acknowledged",
    "resolve": "alert.resolved",
    "escalate": "alert.escalated",
}


@dataclass(frozen=True)
class AlertEvent:
    id: int  # the audit record's sequence
    type: str
    occurred_at: datetime
    actor: str
    site_id: uuid.UUID
    changes: dict[str, Any]  # the fields this change set, with their new values
    alert: dict[str, Any]  # the alert as the API shows it, read with the event

    def payload(self) -> dict[str, Any]:
        return {
            "event_id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "changes": self.changes,
            "alert": self.alert,
        }


def head(session: Session) -> int:
    """The sequence of the latest audit record (0 for an empty trail)."""
    return session.scalar(select(func.coalesce(func.max(AuditRecord.sequence), 0))) or 0


@dataclass(frozen=True)
class EventPage:
    events: list[AlertEvent]
    cursor: int  # the last id read (the caller's next ``after``), visible or not
    more: bool  # the page was full: read again from ``cursor``


def read_events(
    session: Session, after: int, limit: int, site_ids: frozenset[uuid.UUID] | None = None
) -> EventPage:
    """Up to ``limit`` alert events with id > ``after``, oldest first, keeping only those of
    alerts at ``site_ids`` when given (None: every site)."""
    records = session.execute(
        select(
            AuditRecord.sequence,
            AuditRecord.action,
            AuditRecord.occurred_at,
            AuditRecord.actor,
            AuditRecord.entity_id,
            AuditRecord.after,
        )
        .where(AuditRecord.sequence > after, AuditRecord.entity_type == ALERTS)
        .order_by(AuditRecord.sequence)
        .limit(limit)
    ).all()
    if not records:
        return EventPage([], after, more=False)
    ids = {uuid.UUID(r.entity_id) for r in records}
    stmt = select(Alert).where(Alert.id.in_(ids))
    if site_ids is not None:
        stmt = stmt.where(Alert.site_id.in_(site_ids))
    alerts = {alert.id: alert for alert in session.scalars(stmt)}
    events = []
    for record in records:
        alert = alerts.get(uuid.UUID(record.entity_id))
        if alert is None:  # another site's alert
            continue
        events.append(
            AlertEvent(
                id=record.sequence,
                type=EVENT_TYPES.get(record.action, f"alert.{record.action}"),
                occurred_at=record.occurred_at,
                actor=record.actor,
                site_id=alert.site_id,
                changes=record.after or {},
                alert=AlertRead.model_validate(alert).model_dump(mode="json"),
            )
        )
    return EventPage(events, records[-1].sequence, more=len(records) == limit)
