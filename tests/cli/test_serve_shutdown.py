"""SIGTERM to `vigil serve`, through a real process: a live alert stream ends cleanly (after a
comment saying the server is stopping, its chunked body closed, not cut off), a write still
arriving when the signal came gets its whole 201 and is stored, and the process exits 0 within
a few seconds. With one worker and with two."""

import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import migrations
from app.clock import utcnow
from app.db import make_engine
from app.models import VitalReading
from tests.conftest import BACKENDS
from tests.durability.world import Trial, seed_trial
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow


class StreamReader(threading.Thread):
    """Reads the alert stream to its end, keeping every line and how it ended."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.ended_cleanly = False

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with httpx.stream(
                "GET", self.url, headers=headers, timeout=httpx.Timeout(5.0, read=30.0)
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    self.lines.append(line)
                    if line == "event: ready":
                        self.ready.set()
            self.ended_cleanly = True
        except BaseException as exc:
            self.error = exc


class SlowWrite(threading.Thread):
    """POSTs a reading whose body arrives in two parts: the second only once ``release`` is
    set, so the request is in flight for as long as the test wants."""

    def __init__(self, url: str, token: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.payload = json.dumps(body).encode()
        self.first_part_sent = threading.Event()
        self.release = threading.Event()
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None

    def _body(self) -> Iterator[bytes]:
        half = len(self.payload) // 2
        yield self.payload[:half]
        self.first_part_sent.set()
        self.release.wait(20)
        yield self.payload[half:]

    def run(self) -> None:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Content-Length": str(len(self.payload)),
        }
        try:
            self.response = httpx.post(self.url, content=self._body(), headers=headers, timeout=30)
        except BaseException as exc:
            self.error = exc


def _login(base: str, trial: Trial) -> str:
    login = httpx.post(
        f"{base}/auth/login", json={"username": trial.clinician, "password": trial.password}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_ends_streams_cleanly_finishes_the_write_in_flight_and_exits_0(
    fresh_database_url, backend, workers, tmp_path
):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    trial = seed_trial(url)
    server = ServerProcess(url, tmp_path / "serve.log", workers=workers, serve=True)
    server.start(timeout=60)
    try:
        stream = StreamReader(f"{server.base}/alerts/stream", _login(server.base, trial))
        stream.start()
        assert stream.ready.wait(10), "the stream did not start"
        reading_id = uuid.uuid4()
        write = SlowWrite(
            f"{server.base}/dosing-sessions/{trial.dosing_session_id}/vital-readings",
            trial.device_token,
            {
                "id": str(reading_id),
                "measured_at": (utcnow() - timedelta(minutes=5)).isoformat(),
                "observations": [{"code": "PULSE", "value": 88, "unit": "beats/min"}],
            },
        )
        write.start()
        assert write.first_part_sent.wait(10)
        time.sleep(0.5)  # the request's head and first half have reached the server

        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        stream.join(10)
        assert not stream.is_alive(), "the stream did not end within 10 s of SIGTERM"
        assert stream.error is None, f"the stream was cut off: {stream.error!r}"
        assert stream.ended_cleanly
        assert ": server stopping; reconnect with Last-Event-ID" in stream.lines
        assert server.process.poll() is None, "exited before the write in flight was answered"

        write.release.set()
        write.join(15)
        assert write.error is None, f"the write in flight failed: {write.error!r}"
        assert write.response is not None and write.response.status_code == 201
        assert write.response.json()["id"] == str(reading_id)

        code = server.process.wait(15)
        took = time.monotonic() - signalled
        assert code == 0, server.log_path.read_text()[-3000:]
        assert took < 10, f"exited {took:.1f} s after SIGTERM"
        server.process = None
    finally:
        server.stop()

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            stored = session.scalars(select(VitalReading.id).where(VitalReading.id == reading_id))
            assert list(stored) == [reading_id]
    finally:
        engine.dispose()
