"""An Idempotency-Key (app/idempotency.py) through real server processes on a committed
database, on SQLite and PostgreSQL: a duplicate sent while the first request is still being
handled is answered 409 (by the same process, and on PostgreSQL by another process too), never
done twice; and a kept answer survives a SIGKILL of the server the moment it was given."""

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app import migrations
from app.audit.recorder import AUDIT_CHAIN_LOCK
from app.clock import utcnow
from app.db import make_engine
from app.idempotency import ADVISORY_CLASS
from app.models import IdempotencyKey, VitalReading
from tests.conftest import BACKENDS
from tests.durability.world import Trial, seed_trial
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

WAITING_FOR_THE_CHAIN = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND objid = :key AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database())"
)
HOLDING_A_KEY = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND classid = :class AND objsubid = 2 AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database())"
)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[str]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    yield url


def _reading(minutes_ago: float = 5) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": (utcnow() - timedelta(minutes=minutes_ago)).isoformat(),
        "observations": [{"code": "PULSE", "value": 80, "unit": "beats/min"}],
    }


def _post(server: ServerProcess, trial: Trial, body: dict[str, Any], key: str | None):
    headers = {"Authorization": f"Bearer {trial.device_token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(
        f"{server.base}/dosing-sessions/{trial.dosing_session_id}/vital-readings",
        json=body,
        headers=headers,
        timeout=30,
    )


def _stored(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            readings = connection.scalar(select(func.count()).select_from(VitalReading))
            keys = connection.scalar(select(func.count()).select_from(IdempotencyKey))
            return int(readings or 0), int(keys or 0)
    finally:
        engine.dispose()


def _in_thread(answers: list[httpx.Response], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=lambda: answers.append(_post(*args)))
    thread.start()
    return thread


def _assert_in_flight(answer: httpx.Response) -> None:
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/idempotency-key-in-flight")
    assert int(answer.headers["Retry-After"]) >= 1


def test_a_duplicate_while_the_first_is_in_flight_is_answered_409(database: str, tmp_path: Path):
    trial = seed_trial(database)
    one = ServerProcess(database, tmp_path / "one.log")
    other = ServerProcess(database, tmp_path / "other.log")
    key, body = "tablet-1:42", _reading()
    first: list[httpx.Response] = []
    from_other: list[httpx.Response] = []
    postgres = make_url(database).get_backend_name() == "postgresql"
    engine = make_engine(database)
    try:
        one.start()
        other.start()
        # the device's token is seen now, so no request below writes to its row
        for server in (one, other):
            assert _post(server, trial, _reading(10), None).status_code == 201
        if postgres:
            # the first request takes its key, then waits for the audit chain at its write
            with engine.connect() as holder:
                holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": AUDIT_CHAIN_LOCK})
                held = _in_thread(first, one, trial, body, key)
                while not holder.scalar(WAITING_FOR_THE_CHAIN, {"key": AUDIT_CHAIN_LOCK}):
                    held.join(0.05)
                    assert held.is_alive(), first
                assert holder.scalar(HOLDING_A_KEY, {"class": ADVISORY_CLASS}) == 1
                _assert_in_flight(_post(one, trial, body, key))  # this process knows
                _assert_in_flight(_post(other, trial, body, key))  # the key's lock says
                holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": AUDIT_CHAIN_LOCK})
                held.join(30)
        else:
            # the first request waits for the write lock (another writer holds it)
            database_path = make_url(database).database
            assert database_path
            holder = sqlite3.connect(database_path, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                held = _in_thread(first, one, trial, body, key)
                held.join(1.0)
                assert held.is_alive(), first
                _assert_in_flight(_post(one, trial, body, key))  # this process knows
                # another process cannot know: it waits for the write lock too, then finds
                # the first one's answer (or gives it, and the first one replays it)
                waiting = _in_thread(from_other, other, trial, body, key)
                waiting.join(0.5)
                holder.execute("ROLLBACK")
            finally:
                holder.close()
            held.join(30)
            waiting.join(30)
        assert first[0].status_code == 201, first[0].text
        answers = first + from_other
        assert {a.content for a in answers} == {first[0].content}
        assert [a.headers.get("Idempotent-Replayed") for a in answers].count(None) == 1
        again = _post(one, trial, body, key)
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.content == first[0].content
        assert _stored(database) == (3, 1)  # the two without a key, and this one once
    finally:
        one.stop()
        other.stop()
        engine.dispose()


def test_a_kept_answer_survives_a_sigkill(database: str, tmp_path: Path):
    trial = seed_trial(database)
    server = ServerProcess(database, tmp_path / "server.log")
    key, body = str(uuid.uuid4()), _reading()
    try:
        server.start()
        first = _post(server, trial, body, key)
        server.kill()  # at once: the answer has just arrived
        assert first.status_code == 201, first.text
        server.start()
        again = _post(server, trial, body, key)
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.content == first.content
        assert again.headers["content-type"] == first.headers["content-type"]
        other = _post(server, trial, _reading(), key)
        assert other.status_code == 422 and "used for another request" in other.text
    finally:
        server.stop()
    assert _stored(database) == (1, 1)
