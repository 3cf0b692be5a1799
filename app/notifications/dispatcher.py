"""Delivering the outbox: every Vigil process runs a dispatcher; they share the work through the
database, so any process may deliver what any other wrote.

A dispatcher claims the deliveries that are due (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two processes never claim the same one; SQLite's write lock serialises the claims), counts the
attempt and holds each for VIGIL_OUTBOX_LEASE_SECONDS, and commits that before it sends
anything. It then sends them (a few at once) and records each outcome in a transaction of its
own: delivered; failed, to be tried again after a pause that doubles with each failure (with a
little jitter, up to VIGIL_OUTBOX_RETRY_MAX_SECONDS); or dead after VIGIL_OUTBOX_MAX_ATTEMPTS,
for an admin to look at and send again (app/notifications/service.py).

A process that dies mid-send leaves its claims leased: when the lease runs out another process
(or the same one restarted) claims them again. So delivery is at least once, and a receiver that
keeps the event ids it has seen (``webhook-id``, ``Message-ID``) sees every event exactly once.

It wakes after every local commit that changed an alert (app/events/signals.py), and otherwise
looks every VIGIL_OUTBOX_POLL_SECONDS, which also catches what other processes wrote.
"""

import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app import clock, metrics
from app.config import Settings
from app.db import transaction_slot
from app.events import signals
from app.models import NotificationDelivery, NotificationEvent, NotificationSubscription
from app.models.notification import DeliveryStatus
from app.notifications import channels

log = logging.getLogger("vigil.notifications")

ACTOR = "system:notifications"
BATCH = 32  # deliveries claimed at once
SENDERS = 4  # sent at once
PENDING = DeliveryStatus.PENDING.value
T = TypeVar("T")
D = NotificationDelivery


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    attempts: int  # this one included
    event: dict[str, Any]
    target: channels.Target


def claim(session: Session, now: datetime, settings: Settings, limit: int = BATCH) -> list[Claim]:
    """Take up to ``limit`` due deliveries for this process: counted and leased at commit."""
    due = (
        select(D.id)
        .where(
            D.status == PENDING,
            D.next_attempt_at <= now,
            or_(D.leased_until.is_(None), D.leased_until < now),
        )
        .order_by(D.next_attempt_at, D.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if not ids:
        return []
    lease = timedelta(seconds=settings.outbox_lease_seconds)
    session.execute(
        update(D)
        .where(D.id.in_(ids))
        .values(leased_until=now + lease, attempts=D.attempts + 1, last_attempt_at=now),
        execution_options={"synchronize_session": False},
    )
    rows = session.execute(
        select(
            D.id,
            D.attempts,
            NotificationEvent.payload,
            NotificationSubscription.channel,
            NotificationSubscription.target,
            NotificationSubscription.secret,
        )
        .join(NotificationEvent, NotificationEvent.id == D.event_id)
        .join(NotificationSubscription, NotificationSubscription.id == D.subscription_id)
        .where(D.id.in_(ids))
        .order_by(D.next_attempt_at, D.id)
    ).all()
    return [
        Claim(
            row.id, row.attempts, row.payload, channels.Target(row.channel, row.target, row.secret)
        )
        for row in rows
    ]


def pause_after(attempts: int, settings: Settings) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling, jittered."""
    pause = settings.outbox_retry_seconds * 2 ** (attempts - 1)
    return min(pause, settings.outbox_retry_max_seconds) * random.uniform(0.8, 1.2)  # noqa: S311


def record(
    session: Session, done: Claim, error: str | None, now: datetime, settings: Settings
) -> str:
    """Write how the attempt went; returns the delivery's status."""
    values: dict[str, Any] = {"leased_until": None, "last_error": error}
    if error is None:
        values |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
    elif done.attempts >= settings.outbox_max_attempts:
        values |= {"status": DeliveryStatus.DEAD.value}
    else:
        values |= {"next_attempt_at": now + timedelta(seconds=pause_after(done.attempts, settings))}
    session.execute(
        update(D).where(D.id == done.delivery_id, D.status == PENDING).values(**values),
        execution_options={"synchronize_session": False},
    )
    return str(values.get("status", PENDING))


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        now: Callable[[], datetime] = clock.utcnow,
    ) -> None:
        self._sessions = sessions
        self._on_sqlite = sessions.kw["bind"].dialect.name == "sqlite"
        self._settings = settings
        self._now = now
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="notify")
        self._channels = channels.Sender(settings)

    def _in_transaction(self, step: Callable[[Session], T]) -> T:
        """A short transaction of its own. On SQLite it waits its turn among the requests'
        (one writer at a time); on PostgreSQL it does not queue behind them: its transactions
        take no lock a request holds (no audit record, rows nobody else writes), and a
        notification waiting for ingest to quieten down would reach the clinician late."""
        slot = transaction_slot() if self._on_sqlite else nullcontext()
        with slot, self._sessions() as session:
            session.info["actor"] = ACTOR
            result = step(session)
            session.commit()
            return result

    def _send(self, claimed: Claim) -> str:
        error = self._channels.send(claimed.target, claimed.event)
        outcome = "delivered" if error is None else "failed"
        metrics.NOTIFICATION_ATTEMPTS.labels(claimed.target.channel, outcome).inc()
        status = self._in_transaction(
            lambda s: record(s, claimed, error, self._now(), self._settings)
        )
        if error is not None:
            log.warning(
                "notification %s (%s, attempt %d) to %s failed: %s%s",
                claimed.event["id"],
                claimed.event["type"],
                claimed.attempts,
                claimed.target.channel,
                error,
                "; dead, an admin may send it again" if status == DeliveryStatus.DEAD else "",
            )
        return status

    def run_once(self) -> int:
        """Claim what is due and send it; returns the number claimed."""
        claims = self._in_transaction(lambda s: claim(s, self._now(), self._settings))
        for future in [self._senders.submit(self._send, each) for each in claims]:
            try:
                future.result()
            except Exception:
                log.exception("notifications: recording a delivery failed; its lease will lapse")
        return len(claims)

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._woken.clear()
            claimed = 0
            try:
                claimed = self.run_once()
            except Exception:
                log.exception("notifications: the dispatcher failed; trying again")
            if claimed < BATCH:
                self._woken.wait(self._settings.outbox_poll_seconds)

    def start(self) -> None:
        signals.add_waker(self.wake)
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        signals.remove_waker(self.wake)
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=self._settings.outbox_timeout_seconds + 10)
            self._thread = None
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._channels.close()
