"""The scheduler: the safety checks that fire by the clock alone, run every few seconds.

Each tick: critical alerts not acknowledged in time escalate from the site clinician to the
medical monitor (app.alerts.service.escalate_overdue), and the sweep (app.alerts.sweep) judges the
dosing sessions in progress (overdue measurements), the adverse events whose reporting clock
runs and the visits whose window closed without an outcome (app.alerts.visit_windows), each step
in a transaction of its own. Alerts it opens or changes reach the live streams
like any other (app/events/). It also forgets the answers kept for Idempotency-Keys once older
than VIGIL_IDEMPOTENCY_KEEP_HOURS (app/idempotency.py).

Several processes may serve Vigil from one database; only the leader ticks. On PostgreSQL the
leader is the process holding a session-level advisory lock on a connection of its own: if the
process dies or the connection drops, the server releases the lock and another process takes over
at its next attempt (each interval). On SQLite the leader holds an exclusive lock on a file beside
the database (several workers on one machine). A step that fails is logged and rolled back; the
others go on, and the next tick tries it again.
"""

import contextlib
import fcntl
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app import clock, idempotency, listeners, metrics
from app.alerts import service as alerts
from app.alerts import sweep, visit_windows
from app.db import transaction_slot
from app.models import AdverseEvent, DosingSession

log = logging.getLogger("vigil.scheduler")

SCHEDULER_LOCK = 0x5649474C  # "VIGL": the advisory lock of the scheduler's leader
ACTOR = "system:scheduler"
T = TypeVar("T")


def _sweep_session(
    session: Session, dosing_session_id: uuid.UUID, now: datetime, since: datetime | None
) -> int:
    dosing_session = session.get(DosingSession, dosing_session_id)
    if dosing_session is None:
        return 0
    return len(sweep.sweep_session(session, dosing_session, now, since))


def _flag_missed(session: Session, visit_id: uuid.UUID, now: datetime) -> int:
    return len(visit_windows.flag_missed(session, visit_id, now))


def _sweep_adverse_event(session: Session, event_id: uuid.UUID, now: datetime) -> int:
    event = session.get(AdverseEvent, event_id)
    return 0 if event is None else len(sweep.sweep_adverse_event(session, event, now))


class Leadership(Protocol):
    def acquire(self) -> bool:
        """Lead now? Takes the lock if free, or confirms it is still held."""

    def release(self) -> None: ...


class PostgresLeadership:
    """A session-level advisory lock on a dedicated connection (outside the pool)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = create_engine(engine.url, poolclass=NullPool)
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        try:
            if self._connection is not None:
                self._connection.exec_driver_sql("SELECT 1")  # still connected: still the lock
                return True
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK}
            ).scalar()
            if taken:
                self._connection = connection
                return True
            connection.close()
            return False
        except DBAPIError as exc:
            log.warning("scheduler: lost the database connection (%s); not leading", exc)
            self._close()
            return False

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()
            self._connection = None

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK}
                )
        self._close()
        self._engine.dispose()


class FileLeadership:
    """An exclusive lock on a file beside the SQLite database: one leader per machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AlwaysLeader:
    """An in-memory database belongs to one process."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def leadership_for(engine: Engine) -> Leadership:
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    database = engine.url.database
    if database and database != ":memory:":
        return FileLeadership(Path(f"{database}.scheduler-lock"))
    return AlwaysLeader()


@dataclass(frozen=True)
class Tick:
    at: datetime
    escalated: int  # alerts escalated to the medical monitor
    raised: int  # alerts opened or updated by the sweep
    failed: int = 0  # candidates whose step failed (rolled back; tried again next tick)
    swept: int = 0  # sessions in progress judged (the others had nothing that could be overdue)


class Scheduler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval_seconds: float,
        *,
        leadership: Leadership | None = None,
        now: Callable[[], datetime] = clock.utcnow,
    ) -> None:
        listeners.install()  # its writes are audited and announced in any process that runs it
        engine = sessions.kw["bind"]
        self._sessions = sessions
        self.interval_seconds = interval_seconds
        self.leadership = leadership or leadership_for(engine)
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leading = False
        self.ticks = 0
        # Each session in progress: the ``now`` of its last sweep (this process's memory; a new
        # leader starts without it and sweeps every session whole once).
        self._swept_until: dict[uuid.UUID, datetime] = {}

    def _in_transaction(self, step: Callable[[Session], T]) -> T:
        with transaction_slot(), self._sessions() as session:
            session.info["actor"] = ACTOR
            try:
                result = step(session)
                session.commit()
            except Exception:
                session.rollback()
                raise
            return result

    def _step(self, step: Callable[[Session], int]) -> int | None:
        """One candidate of the sweep in a transaction of its own: the alerts it opened or
        updated, or None if it failed (logged, rolled back)."""
        try:
            return self._in_transaction(step)
        except Exception:
            log.exception("scheduler: a sweep step failed; trying again next tick")
            return None

    def tick(self) -> Tick:
        """One pass of the time-driven checks. Each step is a transaction of its own (the
        escalations, then each candidate of the sweep), so a tick never holds the database for
        long: ingest goes on between the steps, and one failing step spoils no other. A session
        is swept from its last sweep on, and only when a measurement may have become overdue
        since then (app.alerts.sweep.plan); a failed one is tried again from the same point."""
        now = self._now()
        escalated = self._in_transaction(lambda s: len(alerts.escalate_overdue(s, now)))
        self._step(lambda s: idempotency.forget_expired(s, now))
        plan, event_ids, visit_ids = self._in_transaction(
            lambda s: (
                sweep.plan(s, now, self._swept_until),
                [e.id for e in sweep.reporting_clocks(s)],
                visit_windows.closed_windows(s, now),
            )
        )
        # the sessions with nothing to look for are judged up to now as they stand
        swept = {i: now for i in plan.running if i not in plan.to_sweep}
        raised = failed = 0
        swept_sessions = 0
        for session_id, since in plan.to_sweep.items():
            done = self._step(
                partial(_sweep_session, dosing_session_id=session_id, now=now, since=since)
            )
            if done is not None:
                raised += done
                swept[session_id] = now
                swept_sessions += 1
            else:
                failed += 1
                if since is not None:
                    swept[session_id] = since
        for event_id in event_ids:
            done = self._step(partial(_sweep_adverse_event, event_id=event_id, now=now))
            if done is not None:
                raised += done
            else:
                failed += 1
        for visit_id in visit_ids:
            done = self._step(partial(_flag_missed, visit_id=visit_id, now=now))
            if done is not None:
                raised += done
            else:
                failed += 1
        self._swept_until = swept
        self.ticks += 1
        if escalated or raised or failed:
            log.info(
                "scheduler: %d alert(s) escalated, %d opened or updated, %d step(s) failed; "
                "%d of %d session(s) in progress swept",
                escalated,
                raised,
                failed,
                swept_sessions,
                len(plan.running),
            )
        return Tick(at=now, escalated=escalated, raised=raised, failed=failed, swept=swept_sessions)

    def run_once(self) -> Tick | None:
        """Tick if this process leads; None if another one does."""
        leading = self.leadership.acquire()
        if leading != self.leading:
            log.info("scheduler: %s (pid %d)", "leading" if leading else "standing by", os.getpid())
            self.leading = leading
            metrics.SCHEDULER_LEADING.set(1 if leading else 0)
        if not leading:
            return None
        return self.tick()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("scheduler: the tick failed; trying again next interval")
            self._stop.wait(self.interval_seconds)
        self.leadership.release()
        self.leading = False
        metrics.SCHEDULER_LEADING.set(0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
