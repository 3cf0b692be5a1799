"""Two requests storing the same reading id at once, on a real committed PostgreSQL database: a
tablet that retries before the first answer reached it. The second waits for the first to commit
and then hears what was stored (a duplicate, or a refusal if its content differs), inside its own
transaction, which keeps its other readings; the reading is stored and audited once."""

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import migrations
from app.clock import utcnow
from app.db import make_engine
from app.models import AuditRecord, DosingSession, VitalReading
from app.vitals import service as vitals
from tests.factories.dosing import committed_session_in_progress

NOW = utcnow().replace(microsecond=0)


@pytest.fixture
def running(fresh_database_url) -> Iterator[tuple[Engine, uuid.UUID]]:
    """A session in progress on a fresh PostgreSQL database (SQLite lets one writer in at a
    time, from BEGIN: there the second request simply follows the first)."""
    url = fresh_database_url("postgresql")
    migrations.upgrade(url)
    engine = make_engine(url)
    dosing_id = committed_session_in_progress(engine, NOW - timedelta(hours=1))
    yield engine, dosing_id
    engine.dispose()


def _reading(reading_id: str, minutes_ago: int, pulse: int = 84) -> dict[str, Any]:
    return {
        "id": reading_id,
        "measured_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "observations": [
            {"code": "SYSBP", "value": 124, "unit": "mmHg"},
            {"code": "DIABP", "value": 80, "unit": "mmHg"},
            {"code": "PULSE", "value": pulse, "unit": "beats/min"},
        ],
    }


def _session(engine: Engine) -> Session:
    session = Session(engine)
    session.info["actor"] = "device:test"
    return session


@pytest.mark.parametrize(
    ("resent_pulse", "outcome"), [(84, "duplicate"), (120, "rejected")], ids=["same", "differs"]
)
def test_a_reading_sent_twice_at_once_is_stored_once_and_the_second_hears_what_was_stored(
    running, resent_pulse, outcome
):
    engine, dosing_id = running
    shared = str(uuid.uuid4())
    first = _session(engine)
    result = vitals.ingest_batch(
        first, first.get_one(DosingSession, dosing_id), [_reading(shared, 10)], "device"
    )
    assert [r.status for r in result.results] == ["accepted"]  # not committed yet

    second_results: list[Any] = []

    def second_request() -> None:
        with _session(engine) as session:
            other = str(uuid.uuid4())
            readings = [_reading(shared, 10, resent_pulse), _reading(other, 5)]
            found = vitals.ingest_batch(
                session, session.get_one(DosingSession, dosing_id), readings, "device"
            )
            second_results.extend(found.results)
            session.commit()

    thread = threading.Thread(target=second_request)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second request should wait for the first one's reading"
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert not thread.is_alive()

    assert [r.status for r in second_results] == [outcome, "accepted"]
    if outcome == "rejected":
        problem = second_results[0].problem
        assert problem["status"] == 409
        assert "already stored, and this one differs in observations" in problem["detail"]
    with Session(engine) as session:
        stored = session.scalars(select(VitalReading.id).order_by(VitalReading.measured_at))
        assert [str(i) for i in stored] == [shared, second_results[1].id]
        audited = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.entity_type == "vital_readings", AuditRecord.entity_id == shared)
        )
        assert audited == 1
        pulse = session.scalar(select(VitalReading.pulse_bpm).where(VitalReading.id == shared))
        assert pulse == 84  # the first request's reading stands
