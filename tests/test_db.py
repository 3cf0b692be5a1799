"""The request unit of work: at most VIGIL_DB_CONCURRENCY requests of a process inside a
transaction at once, the others waiting their turn, and a live stream holding no place."""

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest

from app import config, db, migrations
from app.clock import utcnow
from app.errors import Busy
from tests.alerts.test_stream import _build
from tests.live_server import live_server, open_stream

T = TypeVar("T")


@pytest.fixture
def two_places(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.db'}")
    monkeypatch.setenv("VIGIL_DB_CONCURRENCY", "2")
    db.dispose_engines()
    config.get_settings.cache_clear()
    yield
    db.dispose_engines()
    config.get_settings.cache_clear()


def _request() -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(), client=None)


def test_a_third_request_waits_until_one_of_two_leaves(two_places: None):
    inside: list[str] = []
    leave = threading.Event()

    def handle(name: str) -> None:
        sessions = db.get_session(_request())  # type: ignore[arg-type]
        next(sessions)
        inside.append(name)
        leave.wait(10)
        with pytest.raises(StopIteration):
            next(sessions)

    first, second = (threading.Thread(target=handle, args=(n,)) for n in ("first", "second"))
    first.start(), second.start()
    while len(inside) < 2:
        time.sleep(0.01)
    third = threading.Thread(target=handle, args=("third",))
    third.start()
    time.sleep(0.3)
    assert inside == ["first", "second"] or inside == ["second", "first"]
    leave.set()
    for thread in (first, second, third):
        thread.join(10)
    assert inside[-1] == "third"


def test_requests_arriving_together_share_one_set_of_places(
    two_places: None, monkeypatch: pytest.MonkeyPatch
):
    """The first requests of a process arrive at once; they must all count against the same
    VIGIL_DB_CONCURRENCY places (two sets would let twice as many in)."""
    settings = config.get_settings()

    def slow_settings() -> config.Settings:
        time.sleep(0.05)  # every thread is inside before any has made the places
        return settings

    monkeypatch.setattr(db, "get_settings", slow_settings)
    start = threading.Barrier(4)
    seen: list[object] = []

    def arrive() -> None:
        start.wait(5)
        seen.append(db._transaction_slots())

    threads = [threading.Thread(target=arrive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(seen) == 4 and len({id(places) for places in seen}) == 1


@pytest.mark.parametrize(("url", "places"), [("sqlite:///{}", 1), ("postgresql+psycopg://x/y", 2)])
def test_unset_the_places_are_one_on_sqlite_and_two_on_postgresql(
    monkeypatch: pytest.MonkeyPatch, tmp_path, url: str, places: int
):
    """On SQLite every transaction takes the write lock at BEGIN: a second one inside would only
    wait in SQLite's polling busy handler, which a steady writer starves for seconds."""
    monkeypatch.setenv("VIGIL_DATABASE_URL", url.format(tmp_path / "vigil.db"))
    monkeypatch.delenv("VIGIL_DB_CONCURRENCY", raising=False)
    db.dispose_engines()
    config.get_settings.cache_clear()
    try:
        semaphore = db._transaction_slots()
        taken = 0
        while semaphore.acquire(timeout=0.05):
            taken += 1
        assert taken == places
    finally:
        db.dispose_engines()
        config.get_settings.cache_clear()


def test_a_request_that_fails_gives_its_place_back(two_places: None):
    for _ in range(3):  # more failures than places: none is lost
        sessions = db.get_session(_request())  # type: ignore[arg-type]
        next(sessions)
        with pytest.raises(RuntimeError):
            sessions.throw(RuntimeError("the handler failed"))
    sessions = db.get_session(_request())  # type: ignore[arg-type]
    next(sessions)
    sessions.close()


def _run_in_own_loop(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run`` in a thread of its own: the suite's browser tests leave an event loop
    running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(scenario())).result(timeout=30)


def test_requests_wait_for_a_place_on_the_event_loop_first_come_first_served(two_places: None):
    """Waiting holds no worker thread (a thread pool full of waiters once starved the requests
    holding the places of threads for their next steps), and the places go in arrival order."""

    async def scenario() -> list[int]:
        held = [db._request_place(_request()) for _ in range(2)]
        for place in held:
            await anext(place)
        admitted: list[int] = []

        async def request(n: int) -> None:
            place = db._request_place(_request())
            await anext(place)
            admitted.append(n)
            await asyncio.sleep(0.01)
            await place.aclose()

        threads = set(threading.enumerate())
        waiting = [asyncio.create_task(request(n)) for n in range(6)]
        await asyncio.sleep(0.1)
        assert admitted == [] and not set(threading.enumerate()) - threads  # no thread started
        for place in held:
            await place.aclose()
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
        return admitted

    assert _run_in_own_loop(scenario) == list(range(6))


def test_a_request_waiting_too_long_for_a_place_is_told_the_server_is_busy(
    two_places: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(db, "SLOT_WAIT_SECONDS", 0.2)

    async def scenario() -> None:
        held = [db._request_place(_request()) for _ in range(2)]
        for place in held:
            await anext(place)
        with pytest.raises(Busy) as refused:
            await anext(db._request_place(_request()))
        assert refused.value.status_code == 503 and "nothing was recorded" in refused.value.detail
        for place in held:
            await place.aclose()
        again = db._request_place(_request())
        await anext(again)  # the places are back
        await again.aclose()

    _run_in_own_loop(scenario)


def test_open_alert_streams_hold_no_place(tmp_path):
    """With one place per process, two open streams still leave room for a tablet's post."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    migrations.upgrade(url)
    built = _build(url)
    try:
        with (
            live_server(url, db_concurrency="1") as base,
            open_stream(base, built["clinician_a"]) as first,
            open_stream(base, built["monitor"]) as second,
        ):
            first.next_of("ready"), second.next_of("ready")
            response = httpx.get(
                f"{base}/dosing-sessions/{built['session_a']}",
                headers={"Authorization": f"Bearer {built['clinician_a']}"},
                timeout=5,
            )
            assert response.status_code == 200
    finally:
        built["engine"].dispose()


def test_a_request_that_waits_too_long_is_told_the_server_is_busy(
    two_places: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(db, "SLOT_WAIT_SECONDS", 0.2)
    held = [db.get_session(_request()) for _ in range(2)]  # type: ignore[arg-type]
    for sessions in held:
        next(sessions)
    with pytest.raises(Busy) as refused:
        next(db.get_session(_request()))  # type: ignore[arg-type]
    assert refused.value.status_code == 503
    assert "nothing was recorded" in refused.value.detail
    for sessions in held:
        sessions.close()


def _post_raw(base: str, token: str, session_id: uuid.UUID, reading_id: str) -> socket.socket:
    """A tablet's post of one reading, sent on a socket of its own (and not read)."""
    body = (
        f'{{"id":"{reading_id}","measured_at":"{(utcnow() - timedelta(minutes=5)).isoformat()}",'
        '"observations":[{"code":"PULSE","value":84,"unit":"beats/min"}]}'
    ).encode()
    host, port = base.removeprefix("http://").split("/")[0].split(":")
    path = f"/api/v1/dosing-sessions/{session_id}/vital-readings"
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_a_post_whose_tablet_gave_up_while_it_waited_is_not_stored_and_one_still_waiting_is(
    tmp_path,
):
    """Through a real server with one place: while the place is held, two tablets post; one
    closes its connection (its timeout), the other waits. Once the place is free, the one
    still waiting is stored and answered 201, the one that gave up is not stored."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    migrations.upgrade(url)
    built = _build(url)
    headers = {"Authorization": f"Bearer {built['clinician_a']}"}
    try:
        with live_server(url, db_concurrency="1") as base:
            session_url = f"{base}/dosing-sessions/{built['session_a']}"
            assert httpx.get(session_url, headers=headers).status_code == 200  # the gate exists
            ((loop, gate),) = [(lp, g) for lp, g in db._gates.items() if lp.is_running()]
            asyncio.run_coroutine_threadsafe(gate.acquire(), loop).result(5)  # the place, held
            gone, waiting = str(uuid.uuid4()), str(uuid.uuid4())
            gave_up = _post_raw(base, built["device_a"], built["session_a"], gone)
            patient = _post_raw(base, built["device_a"], built["session_a"], waiting)
            time.sleep(0.3)  # both read and waiting for the place
            gave_up.close()
            time.sleep(0.2)
            loop.call_soon_threadsafe(gate.release)
            answer = patient.recv(200).decode()
            patient.close()
            assert answer.startswith("HTTP/1.1 201"), answer

            def stored(reading_id: str) -> int:
                found = httpx.get(f"{base}/vital-readings/{reading_id}", headers=headers)
                return found.status_code

            assert stored(waiting) == 200
            assert stored(gone) == 404
    finally:
        built["engine"].dispose()
