"""The scheduler: one leader among the processes sharing a database, what a tick does, and what
a failing tick leaves behind. On real, committed databases (fresh per test module)."""

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from app import migrations
from app.alerts import sweep as sweep_module
from app.auth import tokens
from app.clock import utcnow
from app.db import make_engine
from app.models import Alert, AuditRecord, DosingSession, Participant, Site, Visit
from app.permissions import Role
from app.scheduler import ACTOR, SCHEDULER_LOCK, FileLeadership, Scheduler
from app.users import service as users
from tests.conftest import BACKENDS, TEST_PASSWORD
from tests.factories.alerts import make_alert
from tests.factories.dosing import make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study
from tests.live_server import live_server, open_stream

NOW = utcnow().replace(microsecond=0)


@dataclass
class Trial:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    dosing_session_id: uuid.UUID


def _trial(url: str) -> Iterator[Trial]:
    migrations.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "test"
        site = make_site(session, make_study(session))
        participant = make_participant(session, site, stage="randomised")
        dosing = make_dosing_session(
            session, participant, started_at=NOW - timedelta(hours=2), initial_dose_mg=80
        )
        session.commit()
        dosing_id = dosing.id
    yield Trial(url, engine, sessionmaker(engine, expire_on_commit=False), dosing_id)
    engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def trial(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[Trial]:
    yield from _trial(fresh_database_url(request.param))


@pytest.fixture(params=BACKENDS)
def own_trial(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[Trial]:
    """A trial of the test's own: no other test's scheduler (some run on the real clock) has
    swept it."""
    yield from _trial(fresh_database_url(request.param))


def _critical_alert(trial: Trial, found_at: datetime) -> uuid.UUID:
    """A critical alert nobody acknowledged; the protocol gives it minutes to be acknowledged."""
    with trial.sessions() as session:
        session.info["actor"] = "test"
        dosing = session.get_one(DosingSession, trial.dosing_session_id)
        alert, _ = make_alert(
            session, dosing, found_at=found_at, rule_id=f"crisis-{uuid.uuid4().hex[:8]}"
        )
        session.commit()
        return alert.id


def _alert(trial: Trial, alert_id: uuid.UUID) -> Alert:
    with trial.sessions() as session:
        return session.get_one(Alert, alert_id)


# --- leadership ---------------------------------------------------------------------------------


def test_one_scheduler_leads_and_another_takes_over_when_it_stops(trial: Trial):
    first = Scheduler(trial.sessions, 60, now=lambda: NOW)
    second = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        assert first.run_once() is not None
        assert second.run_once() is None  # standing by
        assert first.run_once() is not None  # still leading
        first.leadership.release()
        assert second.run_once() is not None
        assert first.run_once() is None
    finally:
        first.leadership.release()
        second.leadership.release()


# The holders of the scheduler's lock in the current database only: the same key in another
# database (another test run, another deployment on the shared server) is another lock.
TERMINATE_THE_LEADER = text(
    "SELECT pg_terminate_backend(pid) FROM pg_locks "
    "WHERE locktype = 'advisory' AND objid = :key AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def test_a_leader_whose_connection_dies_is_replaced(trial: Trial, fresh_database_url):
    if trial.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: the server releases a dead connection's advisory lock")
    # the leader of another database's scheduler: the test must leave it alone
    elsewhere = make_engine(fresh_database_url("postgresql"))
    bystander = elsewhere.connect().execution_options(isolation_level="AUTOCOMMIT")
    first = Scheduler(trial.sessions, 60, now=lambda: NOW)
    second = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        assert bystander.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK})
        assert first.run_once() is not None
        assert second.run_once() is None
        with trial.engine.connect() as admin:
            killed = admin.execute(TERMINATE_THE_LEADER, {"key": SCHEDULER_LOCK}).all()
        assert killed == [(True,)]
        held = bystander.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key "
                "AND granted AND pid = pg_backend_pid()"
            ),
            {"key": SCHEDULER_LOCK},
        )
        assert held == 1  # alive, and still the other database's leader
        deadline = time.monotonic() + 10
        while second.run_once() is None:  # the server frees the lock as the backend exits
            assert time.monotonic() < deadline, "the lock of a dead leader was never released"
            time.sleep(0.1)
        assert first.run_once() is None  # notices its lost connection and stands by
    finally:
        first.leadership.release()
        second.leadership.release()
        bystander.close()
        elsewhere.dispose()


def test_sqlite_workers_on_one_machine_elect_by_a_file_lock(tmp_path: Path):
    path = tmp_path / "vigil.db.scheduler-lock"
    first, second = FileLeadership(path), FileLeadership(path)
    assert first.acquire() and first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


@pytest.mark.slow
def test_of_two_processes_sharing_a_database_only_one_ticks_at_a_time(trial: Trial):
    """Two processes run a scheduler (a tick every 0.1 s) for the same 3 s: the ticks of one all
    come before the other's first (one leads; the other takes over only when it has stopped)."""
    stop_at = time.time() + 5
    script = textwrap.dedent(
        f"""
        import time
        from sqlalchemy.orm import sessionmaker
        from app.db import make_engine
        from app.scheduler import Scheduler
        scheduler = Scheduler(sessionmaker(make_engine({trial.url!r})), 0.1)
        ticks = []
        tick = scheduler.tick
        scheduler.tick = lambda: (ticks.append(time.time()), tick())[1]
        time.sleep(max(0.0, {stop_at} - 3 - time.time()))
        scheduler.start()
        time.sleep(max(0.0, {stop_at} - time.time()))
        scheduler.stop()
        print(" ".join(map(str, ticks)))
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    runs = [[float(t) for t in p.communicate(timeout=60)[0].split()] for p in processes]
    first, second = sorted(runs, key=lambda ticks: ticks[0] if ticks else float("inf"))
    # The leader ticked again and again while the other waited (how often depends on the
    # machine's load: no count of ticks is asserted), and the other never ticked in between.
    assert len(first) >= 2, runs
    assert not second or second[0] > first[-1], "both processes ticked at the same time"


# --- what a tick does ---------------------------------------------------------------------------


def test_a_tick_escalates_a_critical_alert_nobody_acknowledged_in_time(trial: Trial):
    alert_id = _critical_alert(trial, found_at=NOW - timedelta(hours=1))
    scheduler = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        tick = scheduler.run_once()
        assert tick is not None and tick.escalated >= 1
        alert = _alert(trial, alert_id)
        assert alert.escalation_level == 1 and alert.escalated_at == NOW
        with trial.sessions() as session:
            record = session.scalars(
                select(AuditRecord)
                .where(AuditRecord.entity_id == str(alert_id), AuditRecord.action == "escalate")
                .order_by(AuditRecord.sequence)
            ).one()
        assert record.actor == ACTOR
        assert "escalated to the medical monitor" in (record.reason or "")
        # once: the next tick leaves it alone
        again = scheduler.run_once()
        assert again is not None and again.escalated == 0
    finally:
        scheduler.leadership.release()


def test_a_tick_opens_the_overdue_measurement_alert_of_a_silent_session(trial: Trial):
    """No reading has arrived since the dose: the sweep finds the measurements overdue."""
    scheduler = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        tick = scheduler.run_once()
        assert tick is not None
        with trial.sessions() as session:
            kinds = set(
                session.scalars(
                    select(Alert.kind).where(Alert.dosing_session_id == trial.dosing_session_id)
                )
            )
        assert "overdue_measurement" in kinds
        assert scheduler.run_once() == type(tick)(at=NOW, escalated=0, raised=0)
    finally:
        scheduler.leadership.release()


def test_a_tick_marks_a_visit_whose_window_closed_missed_and_raises_its_alert(trial: Trial):
    """The participant was enrolled in January: the windows of its early visits have closed."""
    scheduler = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        assert scheduler.run_once() is not None
        with trial.sessions() as session:
            participant_id = session.get_one(DosingSession, trial.dosing_session_id).participant_id
            prep1 = session.scalars(
                select(Visit).where(Visit.participant_id == participant_id, Visit.code == "PREP1")
            ).one()
            assert prep1.status == "missed"
            (alert,) = session.scalars(
                select(Alert).where(Alert.dedup_key == f"visit_missed:{prep1.id}")
            ).all()
            record = session.scalars(
                select(AuditRecord).where(
                    AuditRecord.entity_id == str(prep1.id), AuditRecord.action == "missed"
                )
            ).one()
        assert alert.kind == "visit_missed" and alert.dosing_session_id is None
        assert record.actor == ACTOR and "without an outcome" in (record.reason or "")
    finally:
        scheduler.leadership.release()


def test_after_its_first_sweep_a_session_is_swept_again_once_a_due_time_passes_its_grace(
    own_trial: Trial,
):
    """Every session here was dosed 90 min before NOW; blood pressure and pulse are due every
    30 min (10 min of grace), so after a tick at dose+80 min nothing can become overdue before
    dose+100 min. A tick in between judges no session; the one after counts the missed one."""
    dosed = NOW - timedelta(minutes=90)
    clock = [dosed + timedelta(minutes=80)]
    scheduler = Scheduler(own_trial.sessions, 60, now=lambda: clock[0])

    def overdue() -> int:
        with own_trial.sessions() as session:
            alert = session.scalar(
                select(Alert).where(
                    Alert.dosing_session_id == own_trial.dosing_session_id,
                    Alert.rule_id == "overdue-bp-pulse",
                )
            )
            return 0 if alert is None else alert.occurrences

    try:
        first = scheduler.run_once()
        assert first is not None and first.swept >= 1
        before = overdue()
        assert before >= 3  # due at the dose, 30 and 60 min after it, all missed

        clock[0] = dosed + timedelta(minutes=95)
        quiet = scheduler.run_once()
        assert quiet is not None and (quiet.swept, quiet.raised) == (0, 0)
        assert overdue() == before

        clock[0] = dosed + timedelta(minutes=101)
        due = scheduler.run_once()
        assert due is not None and due.swept == first.swept and due.raised >= 1
        assert overdue() == before + 1  # due 90 min after the dose
    finally:
        scheduler.leadership.release()


def test_a_failing_step_is_rolled_back_and_tried_again_at_the_next_tick(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
):
    """The sweep of a session fails once: that step changes nothing, the tick goes on (the
    escalation in its own step stands), and the next tick sweeps the session."""
    with trial.sessions() as session:
        session.info["actor"] = "test"
        participant = make_participant(
            session,
            session.get_one(Site, _site_id(trial)),
            f"01-{uuid.uuid4().hex[:3].upper()}",
            stage="randomised",
        )
        silent = make_dosing_session(
            session, participant, started_at=NOW - timedelta(hours=2), initial_dose_mg=80
        )
        session.commit()
    alert_id = _critical_alert(trial, found_at=NOW - timedelta(hours=1))
    failures = []
    real_step = sweep_module.sweep_session

    def failing_once(
        session: Session, dosing_session: DosingSession, now: datetime, since: datetime | None
    ) -> list[Alert]:
        if dosing_session.id == silent.id and not failures:
            failures.append(now)
            real_step(session, dosing_session, now, since)  # its alerts are flushed, then lost
            raise RuntimeError("the database went away")
        return real_step(session, dosing_session, now, since)

    monkeypatch.setattr(sweep_module, "sweep_session", failing_once)
    scheduler = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        first = scheduler.run_once()
        assert first is not None and first.failed == 1 and first.escalated >= 1
        assert _alert(trial, alert_id).escalation_level == 1
        assert _kinds(trial, silent.id) == set()  # rolled back
        second = scheduler.run_once()
        assert second is not None and second.failed == 0
        assert "overdue_measurement" in _kinds(trial, silent.id)
    finally:
        scheduler.leadership.release()


def _site_id(trial: Trial) -> uuid.UUID:
    with trial.sessions() as session:
        dosing = session.get_one(DosingSession, trial.dosing_session_id)
        return session.get_one(Participant, dosing.participant_id).site_id


def _kinds(trial: Trial, dosing_session_id: uuid.UUID) -> set[str]:
    with trial.sessions() as session:
        return set(
            session.scalars(select(Alert.kind).where(Alert.dosing_session_id == dosing_session_id))
        )


def test_the_server_runs_the_scheduler_and_the_monitor_hears_the_escalation(trial: Trial):
    with trial.sessions() as session:
        session.info["actor"] = "test"
        monitor = users.create_user(
            session,
            username=f"monitor-{uuid.uuid4().hex[:6]}",
            display_name="Medical Monitor",
            role=Role.MEDICAL_MONITOR,
            password=TEST_PASSWORD,
        )
        _, token = tokens.issue(session, monitor, tokens.TokenKind.API)
        session.commit()
    with (
        live_server(trial.url, scheduler_interval_seconds="0.2") as base,
        open_stream(base, token) as stream,
    ):
        stream.next_of("ready")
        alert_id = _critical_alert(trial, found_at=utcnow() - timedelta(hours=1))
        for _ in range(50):
            event = stream.next_of("alert.escalated", timeout=10)
            if event.data["alert"]["id"] == str(alert_id):
                break
        assert event.data["actor"] == ACTOR
        assert event.data["changes"]["escalation_level"] == 1


def test_stopping_a_scheduler_gives_up_the_lead(trial: Trial):
    first = Scheduler(trial.sessions, 0.05, now=lambda: NOW)
    first.start()
    deadline = time.monotonic() + 10
    while not first.leading:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stopper = threading.Thread(target=first.stop)
    stopper.start()
    stopper.join(10)
    second = Scheduler(trial.sessions, 60, now=lambda: NOW)
    try:
        assert second.run_once() is not None
    finally:
        second.leadership.release()
