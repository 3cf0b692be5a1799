"""Two server processes on one PostgreSQL database, as behind a load balancer: an alert raised
through process A reaches a live stream held by process B; two clinicians acknowledging the same
alert at once, one through each process, get one 200 and one 409, and so do two resolving it; the
writes of both keep one audit trail that verifies."""

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app import migrations
from app.audit.verify import verify_chain
from app.clock import utcnow
from app.db import make_engine
from tests.durability.world import Trial, seed_trial
from tests.live_server import open_stream
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow
ROUNDS = 4


@pytest.fixture
def servers(
    fresh_database_url, tmp_path: Path
) -> Iterator[tuple[str, Trial, ServerProcess, ServerProcess]]:
    url = fresh_database_url("postgresql")
    migrations.upgrade(url)
    trial = seed_trial(url)
    a = ServerProcess(url, tmp_path / "a.log")
    b = ServerProcess(url, tmp_path / "b.log")
    a.start()
    b.start()
    try:
        yield url, trial, a, b
    finally:
        a.stop()
        b.stop()


def _login(base: str, trial: Trial) -> str:
    login = httpx.post(
        f"{base}/auth/login", json={"username": trial.clinician, "password": trial.password}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def _dangerous(base: str, trial: Trial, minutes: int) -> None:
    posted = httpx.post(
        f"{base}/dosing-sessions/{trial.dosing_session_id}/vital-readings",
        json={
            "id": str(uuid.uuid4()),
            "measured_at": (utcnow() - timedelta(minutes=60 - minutes)).isoformat(),
            "observations": [
                {"code": "SYSBP", "value": 186, "unit": "mmHg"},
                {"code": "DIABP", "value": 104, "unit": "mmHg"},
            ],
        },
        headers={"Authorization": f"Bearer {trial.device_token}"},
    )
    assert posted.status_code == 201, posted.text


def _critical(stream: Any, handled: set[str]) -> dict[str, Any]:
    """The next open critical alert on the stream not yet handled."""
    for _ in range(50):
        alert = stream.next_of("alert.opened", "alert.updated", timeout=10).data["alert"]
        fresh = alert["id"] not in handled
        if fresh and alert["severity"] == "critical" and alert["status"] == "open":
            handled.add(alert["id"])
            return alert
    raise AssertionError("no critical alert on the stream")


def _at_once(*calls: Any) -> list[int]:
    """The status codes of ``calls`` (each a function sending one request), sent together."""
    start = threading.Barrier(len(calls))
    statuses: list[int] = []

    def send(call: Any) -> None:
        start.wait()
        statuses.append(call().status_code)

    threads = [threading.Thread(target=send, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(statuses)


def test_an_alert_raised_through_one_process_is_streamed_and_acknowledged_once_through_two(
    servers: tuple[str, Trial, ServerProcess, ServerProcess],
):
    url, trial, a, b = servers
    token_a, token_b = _login(a.base, trial), _login(b.base, trial)

    def through_both(action: str, body: dict[str, str]) -> list[int]:
        return _at_once(
            *(
                partial(httpx.post, f"{server.base}{action}", json=body, headers=headers)
                for server, headers in (
                    (a, {"Authorization": f"Bearer {token_a}"}),
                    (b, {"Authorization": f"Bearer {token_b}"}),
                )
            )
        )

    races = []
    handled: set[str] = set()
    with open_stream(b.base, token_b) as stream:
        stream.next_of("ready")
        for round_ in range(ROUNDS):
            _dangerous(a.base, trial, minutes=round_)
            alert = _critical(stream, handled)  # raised by A, heard by B
            races.append(
                (
                    through_both(f"/alerts/{alert['id']}/acknowledge", {"note": "seen"}),
                    through_both(f"/alerts/{alert['id']}/resolve", {"resolution": "rechecked"}),
                )
            )
    assert races == [([200, 409], [200, 409])] * ROUNDS
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            result = verify_chain(session)
            assert result.intact, result.broken
    finally:
        engine.dispose()
