"""Two transactions judging one session at the same time, on real committed databases: they share
one alert and both occurrences count. On PostgreSQL both have judged before either locks: the
row lock (FOR UPDATE) and the partial unique index of open alerts order them. SQLite lets one
writer in at a time, so there the second simply follows the first."""

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import migrations
from app.alerts import service as alerts
from app.alerts import sweep
from app.clock import utcnow
from app.db import make_engine
from app.models import Alert, AlertOccurrence, DosingSession
from app.vitals import service as vitals
from tests.conftest import BACKENDS
from tests.factories.dosing import committed_session_in_progress

NOW = utcnow().replace(microsecond=0)
CRISIS = {"SYSBP": 186, "DIABP": 104, "PULSE": 84, "TEMP": 36.9}
UNITS = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}


@dataclass
class Running:
    backend: str
    engine: Engine
    dosing_session_id: uuid.UUID


@pytest.fixture(params=BACKENDS)
def running(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[Running]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    engine = make_engine(url)
    dosing_id = committed_session_in_progress(engine, NOW - timedelta(hours=2))
    yield Running(request.param, engine, dosing_id)
    engine.dispose()


def crisis_reading(measured_at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": measured_at.isoformat(),
        "observations": [
            {"code": code, "value": value, "unit": UNITS[code]} for code, value in CRISIS.items()
        ],
    }


def post(running: Running, reading: dict[str, Any]) -> None:
    with Session(running.engine) as session:
        session.info["actor"] = "device:test"
        dosing_session = session.get_one(DosingSession, running.dosing_session_id)
        result = vitals.ingest_batch(session, dosing_session, [reading], "device")
        assert result.accepted == 1
        session.commit()


def sweep_session(running: Running) -> None:
    with Session(running.engine) as session:
        session.info["actor"] = "system:scheduler"
        sweep.sweep_session(session, session.get_one(DosingSession, running.dosing_session_id), NOW)
        session.commit()


def all_at_once(running: Running, monkeypatch: pytest.MonkeyPatch, *steps) -> None:
    """Each step in a transaction of its own, in threads of their own. On PostgreSQL each waits,
    having judged, until the others have too, then locks."""
    if running.backend == "postgresql":
        judged = threading.Barrier(len(steps), timeout=20)
        real_lock = alerts.lock_unresolved
        waited = threading.local()

        def lock_once_both_have_judged(session: Session, keys):
            if not getattr(waited, "done", False):
                waited.done = True
                judged.wait()
            return real_lock(session, keys)

        monkeypatch.setattr(alerts, "lock_unresolved", lock_once_both_have_judged)
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def alerts_of_rule(running: Running, rule_id: str) -> list[Alert]:
    with Session(running.engine) as session:
        return list(
            session.scalars(
                select(Alert).where(
                    Alert.dosing_session_id == running.dosing_session_id, Alert.rule_id == rule_id
                )
            )
        )


def crisis_alerts(running: Running) -> list[Alert]:
    return alerts_of_rule(running, "hypertensive-crisis")


def occurrence_rows(running: Running, alert: Alert) -> int:
    with Session(running.engine) as session:
        return session.scalar(select(func.count()).where(AlertOccurrence.alert_id == alert.id)) or 0


def test_two_first_crises_at_once_open_one_alert_that_counts_both(running, monkeypatch):
    all_at_once(
        running,
        monkeypatch,
        partial(post, running, crisis_reading(NOW - timedelta(minutes=5))),
        partial(post, running, crisis_reading(NOW - timedelta(minutes=4))),
    )
    (alert,) = crisis_alerts(running)
    assert (alert.status, alert.severity, alert.occurrences) == ("open", "critical", 2)
    assert occurrence_rows(running, alert) == 2


def test_two_crises_at_once_on_an_open_alert_both_add_to_its_count(running, monkeypatch):
    post(running, crisis_reading(NOW - timedelta(minutes=10)))
    (before,) = crisis_alerts(running)
    assert before.occurrences == 1
    all_at_once(
        running,
        monkeypatch,
        partial(post, running, crisis_reading(NOW - timedelta(minutes=5))),
        partial(post, running, crisis_reading(NOW - timedelta(minutes=4))),
    )
    (after,) = crisis_alerts(running)
    assert after.id == before.id
    assert after.occurrences == 3
    assert occurrence_rows(running, after) == 3


def test_two_sweeps_at_once_count_each_missed_due_time_once(running, monkeypatch):
    """Dosed 90 min ago and silent since: blood pressure and pulse due at the dose, 30 and 60
    min after it were missed. Two evaluations that find the same occurrences at the same time
    (a batch and the sweep can) record and count each of them once."""
    all_at_once(
        running, monkeypatch, partial(sweep_session, running), partial(sweep_session, running)
    )
    (alert,) = alerts_of_rule(running, "overdue-bp-pulse")
    assert occurrence_rows(running, alert) == 3
    assert alert.occurrences == 3
