"""A real uvicorn server in a thread, on a free port, serving a fresh migrated database, and a
Server-Sent Events reader: for the tests that need real commits and real streams (the live alert
stream, the scheduler), where the per-test rolled-back transaction cannot stand in."""

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app import config, db
from app.main import create_app

APPS: dict[str, FastAPI] = {}  # the app behind each running test server's base URL


def _clear_caches() -> None:
    db.dispose_engines()
    config.get_settings.cache_clear()


@contextmanager
def live_server(database_url: str, **settings: str) -> Iterator[str]:
    """Serve Vigil on ``database_url`` (already migrated) with the given VIGIL_* settings
    (``alert_feed_poll_seconds="30"``); yields the base URL of the API."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIGIL_DATABASE_URL", database_url)
        for name, value in settings.items():
            patch.setenv(f"VIGIL_{name.upper()}", value)
        _clear_caches()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = create_app()
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            for _ in range(200):
                if server.started:
                    break
                thread.join(0.05)
            assert server.started, "the test server did not start"
            base = f"http://127.0.0.1:{port}/api/v1"
            APPS[base] = app
            yield base
        finally:
            APPS.pop(f"http://127.0.0.1:{port}/api/v1", None)
            server.should_exit = True
            thread.join(15)
            sock.close()
            _clear_caches()


@dataclass
class Event:
    event: str
    id: str | None
    data: Any


@dataclass
class Stream:
    """An SSE stream read by a background thread; ``next()`` waits for the next event."""

    response: httpx.Response
    events: "queue.Queue[Event | None]" = field(default_factory=queue.Queue)

    def next(self, timeout: float = 5.0) -> Event:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout} s") from None
        if item is None:
            raise AssertionError("the stream ended")
        return item

    def next_of(self, *types: str, timeout: float = 5.0) -> Event:
        """The next event of one of ``types``, skipping others."""
        while True:
            event = self.next(timeout)
            if event.event in types:
                return event

    def ended(self, timeout: float = 5.0) -> bool:
        """Whether the server ends the stream within ``timeout`` (events before it skipped)."""
        try:
            while True:
                if self.events.get(timeout=timeout) is None:
                    return True
        except queue.Empty:
            return False

    def quiet(self, seconds: float) -> list[Event]:
        """The events that arrive within ``seconds``."""
        got = []
        try:
            while True:
                item = self.events.get(timeout=seconds)
                if item is None:
                    break
                got.append(item)
        except queue.Empty:
            pass
        return got


def _read(response: httpx.Response, events: "queue.Queue[Event | None]") -> None:
    fields: dict[str, list[str]] = {}
    try:
        for line in response.iter_lines():
            if not line:
                if "data" in fields or "event" in fields:
                    data = "\n".join(fields.get("data", []))
                    events.put(
                        Event(
                            event=(fields.get("event") or ["message"])[0],
                            id=(fields.get("id") or [None])[0],
                            data=json.loads(data) if data else None,
                        )
                    )
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
    except (httpx.HTTPError, RuntimeError):
        pass
    finally:
        events.put(None)


@contextmanager
def open_stream(
    base_url: str,
    token: str,
    *,
    last_event_id: str | None = None,
    params: dict[str, Any] | None = None,
) -> Iterator[Stream]:
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with (
        httpx.Client(timeout=httpx.Timeout(5.0, read=60.0)) as client,
        client.stream(
            "GET", f"{base_url}/alerts/stream", headers=headers, params=params
        ) as response,
    ):
        assert response.status_code == 200, response.read().decode()
        stream = Stream(response)
        reader = threading.Thread(target=_read, args=(response, stream.events), daemon=True)
        reader.start()
        try:
            yield stream
        finally:
            # A socket closed while the reader thread waits in recv() sends nothing to the
            # server; shutting it down does, so the server sees the client leave.
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            reader.join(5)
            response.close()
