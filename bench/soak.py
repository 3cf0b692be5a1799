"""Soak: a study's worth of bedside tablets against two workers for minutes, on PostgreSQL.

Starts `vigil serve --workers 2` (the scheduler on: one worker is elected its leader) on a fresh,
uniquely named PostgreSQL database (dropped afterwards). Seeds the demo study plus --sessions
dosing sessions in progress at S01, each dosed 50 min ago with a routine reading every 5 min
since 10 min before the dose, and a bedside-tablet device: one session through
bench/alert_latency.py's seed, its past visits marked completed (no missed-visit alerts), the
others copied from it in SQL (participant, visits, session, dose, readings; the copies have no
audit records of their own), so 1,000 sessions take seconds, not minutes. Waits --settle
seconds for the scheduler's first sweep, which judges every session once after a start, then:

- each session's tablet posts one reading (POST /dosing-sessions/{id}/vital-readings) every
  --interval seconds on its own clock, the sessions' phases spread evenly (1,000 sessions every
  5 s: one request every 5 ms, 200/s); open loop: a late answer does not delay the next post;
- one reading per session every --dangerous-every seconds carries a blood pressure of 186/104
  mmHg (critical hypertensive crisis; also grade 3 hypertension and a rise from baseline), the
  sessions taking turns so that they come at an even pace. The first opens the session's
  alerts, later ones update them (occurrences, last_found_at): the latency of a dangerous
  reading runs from just before its POST is sent to the first stream event that names it, as
  evidence of a new finding or as the alert's new last_found_at;
- a medical monitor listens on GET /api/v1/alerts/stream (Server-Sent Events);
- a webhook receiver in the bench (a raw asyncio HTTP server on a free port) is subscribed by an
  admin (POST /api/v1/notification-subscriptions, min_severity warning) and checks every
  delivery's Standard Webhooks signature; a delivery is matched to the reading named by its
  evidence or its last_found_at, or else to the session's first dangerous reading posted since
  the previous delivery for that session. Deliveries tell of alerts opened, raised in severity
  or escalated (a subscription's default event types), not of repeated occurrences, so only the
  readings that open an alert have a webhook latency. A 404 there prints "webhook: not
  available" and the webhook figures are null.

The load generator is one asyncio process beside the server: a schedule that hands each post at
its time to a pool of --connections keep-alive connections speaking HTTP/1.1 directly (an HTTP
client library would take CPU the server needs on two cores); its own CPU is measured
(getrusage) and reported, with its event loop's lag. A post not answered --timeout seconds after
its scheduled time is an error, "timeout" (sent) or "timeout_unsent" (no connection was free in
time). Request latency is measured two ways: from the moment a connection sends the post, and
from its scheduled time (what a tablet of its own would see; not hiding the queue when the
server falls behind, i.e. coordinated omission). CPU of the server's processes, of PostgreSQL
and of the whole machine is read from /proc over the load.

Run: `.venv/bin/python bench/soak.py [--postgres ADMIN_URL] [--seconds 180] [--sessions 1000]`.
The last line is one JSON object: readings_per_s (accepted), offered_per_s, the error counts by
kind, stored and stored_per_s (what the server stored, in time or not: its capacity) and
stored_unanswered (stored after the client gave up), request latency p50/p99 (sent and from
schedule) and p99 from schedule per 30 s window, alert latency p50/p99/max at the stream and
at the webhook (null when it is not available), the CPU figures, and whether the goal (0
errors, stream p99 under 100 ms) was met.
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.orm import Session

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from alert_latency import VIGIL, _drop, _percentile, _scratch_database, _seed  # noqa: E402

GOAL_ALERT_P99_MS = 100.0
WINDOW_SECONDS = 30


# --- seeding ------------------------------------------------------------------------------------


def _columns(conn: Connection, table: str) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = :table ORDER BY ordinal_position"
        ),
        {"table": table},
    )
    return [row[0] for row in rows]


def _copy(
    conn: Connection, table: str, overrides: dict[str, str], source: str, params: dict
) -> None:
    """INSERT INTO table SELECT every column of ``t`` (in ``source``), some replaced."""
    columns = _columns(conn, table)
    values = ", ".join(overrides.get(column, f't."{column}"') for column in columns)
    names = ", ".join(f'"{column}"' for column in columns)
    conn.execute(text(f"INSERT INTO {table} ({names}) SELECT {values} FROM {source}"), params)


def _clone_sessions(conn: Connection, template: str, count: int) -> list[str]:
    """``count`` copies of the dosing session ``template`` with its participant, visits, doses
    and readings, under new ids; their ids."""
    params: dict[str, Any] = {"session": template, "count": count}
    params["participant"] = conn.execute(
        text("SELECT participant_id FROM dosing_sessions WHERE id = :session"), params
    ).scalar_one()
    conn.execute(
        text(
            "CREATE TEMP TABLE clone_p ON COMMIT DROP AS SELECT n, gen_random_uuid() AS "
            "participant_id, gen_random_uuid() AS session_id FROM generate_series(1, :count) AS n"
        ),
        params,
    )
    conn.execute(
        text(
            "CREATE TEMP TABLE clone_v ON COMMIT DROP AS SELECT c.n, v.id AS old_id, "
            "gen_random_uuid() AS new_id FROM clone_p c CROSS JOIN visits v "
            "WHERE v.participant_id = :participant"
        ),
        params,
    )
    subject = "'01-C' || lpad(CAST(c.n AS text), 4, '0')"
    _copy(
        conn,
        "participants",
        {"id": "c.participant_id", "subject_id": subject},
        "participants t CROSS JOIN clone_p c WHERE t.id = :participant",
        params,
    )
    _copy(
        conn,
        "visits",
        {"id": "cv.new_id", "participant_id": "c.participant_id"},
        "visits t JOIN clone_v cv ON cv.old_id = t.id JOIN clone_p c ON c.n = cv.n",
        params,
    )
    _copy(
        conn,
        "dosing_sessions",
        {"id": "c.session_id", "participant_id": "c.participant_id", "visit_id": "cv.new_id"},
        "dosing_sessions t CROSS JOIN clone_p c JOIN clone_v cv ON cv.n = c.n "
        "AND cv.old_id = t.visit_id WHERE t.id = :session",
        params,
    )
    for table in ("doses", "vital_readings"):
        _copy(
            conn,
            table,
            {"id": "gen_random_uuid()", "dosing_session_id": "c.session_id"},
            f"{table} t CROSS JOIN clone_p c WHERE t.dosing_session_id = :session",
            params,
        )
    rows = conn.execute(text("SELECT session_id FROM clone_p ORDER BY n"))
    return [str(row[0]) for row in rows]


def _admin_token(url: str) -> str:
    from app.auth import tokens
    from app.db import make_engine
    from app.permissions import Role
    from app.users import service as users

    engine = make_engine(url)
    with Session(engine) as session:
        session.info["actor"] = "bench"
        admin = users.create_user(
            session,
            username="bench-admin",
            display_name="Bench Admin",
            role=Role.ADMIN,
            password="bench password, long enough",
        )
        _, token = tokens.issue(session, admin, tokens.TokenKind.API)
        session.commit()
    engine.dispose()
    return token


def _seed_many(url: str, sessions: int) -> dict[str, Any]:
    seeded = _seed(url, 1, history_hours=50 / 60)
    engine = create_engine(url)
    with engine.begin() as conn:
        # the visits before this one took place: enrolled 50 days ago, the participant's earlier
        # windows have closed, and the sweep would mark each missed and open an alert for it
        conn.execute(
            text(
                "UPDATE visits SET status = 'completed', occurred_on = target_on "
                "WHERE status = 'scheduled' AND window_end_on <= current_date + 1 "
                "AND participant_id = (SELECT participant_id FROM dosing_sessions WHERE id = :s) "
                "AND id NOT IN (SELECT visit_id FROM dosing_sessions)"
            ),
            {"s": seeded["sessions"][0]},
        )
        seeded["sessions"] += _clone_sessions(conn, seeded["sessions"][0], sessions - 1)
    engine.dispose()
    seeded["admin"] = _admin_token(url)
    return seeded


# --- CPU, from /proc ----------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command, CPU seconds so far)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def _cpu(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's process tree, PostgreSQL's processes, the machine."""
    processes = _processes()
    tree, grew = {server_pid}, True
    while grew:
        more = {pid for pid, (parent, _, _) in processes.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    busy = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
    total = sum(int(v) for v in busy)
    idle = int(busy[3]) + int(busy[4])
    return {
        "server": sum(processes[pid][2] for pid in tree if pid in processes),
        "postgres": sum(cpu for _, command, cpu in processes.values() if command == "postgres"),
        "machine": (total - idle) / TICK,
    }


# --- HTTP/1.1 on asyncio streams -----------------------------------------------------------------


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", ""):
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection)."""
    status_line, headers = _headers(await reader.readuntil(b"\r\n\r\n"))
    await _body(reader, headers)
    return int(status_line.split()[1]), headers.get("connection", "").lower() == "close"


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Dangerous:
    session_id: str
    scheduled: float  # perf_counter
    sent: float
    stream: float | None = None
    stream_type: str | None = None
    hook: float | None = None


@dataclass
class Load:
    sessions: list[str]
    began: float = 0.0  # perf_counter of the schedule's start
    ended: float = 0.0  # the last answer
    scheduled: int = 0
    accepted: int = 0
    errors: Counter = field(default_factory=Counter)
    sent_ms: list[float] = field(default_factory=list)
    schedule_ms: list[tuple[float, float]] = field(default_factory=list)  # (offset, ms)
    dangerous: dict[str, Dangerous] = field(default_factory=dict)
    by_time: dict[tuple[str, int], str] = field(default_factory=dict)  # (session, ms) -> id
    by_session: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stream_events: Counter = field(default_factory=Counter)
    lags_ms: list[float] = field(default_factory=list)


def _ms(at: str | datetime) -> int:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return round(moment.timestamp() * 1000)


READING = (
    '{"id":"%s","measured_at":"%s","observations":[{"code":"SYSBP","value":%d,"unit":"mmHg"},'
    '{"code":"DIABP","value":%d,"unit":"mmHg"},{"code":"PULSE","value":84,"unit":"beats/min"},'
    '{"code":"TEMP","value":36.9,"unit":"C"}]}'
)


async def _schedule(queue: asyncio.Queue, load: Load, args: argparse.Namespace) -> None:
    """Every post at its time, whatever the server's answers: session j % n's (j // n)-th."""
    count = len(load.sessions)
    step = args.interval / count
    every = max(1, round(args.dangerous_every / args.interval)) if args.dangerous_every else 0
    total = int(args.seconds / step)
    for j in range(total):
        at = load.began + j * step
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        number, nth = j % count, j // count
        dangerous = every > 0 and (nth + number) % every == every - 1
        queue.put_nowait((at, number, dangerous))
        load.scheduled += 1


async def _connection(
    queue: asyncio.Queue, load: Load, args: argparse.Namespace, token: str, wall: datetime
) -> None:
    """One keep-alive connection taking the next due post, one at a time."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while (item := await queue.get()) is not None:
        at, number, dangerous = item
        deadline = at + args.timeout
        if time.perf_counter() >= deadline:
            load.errors["timeout_unsent"] += 1
            continue
        session_id = load.sessions[number]
        reading_id = str(uuid.uuid4())
        measured = wall + timedelta(seconds=at - load.began)
        body = (
            READING % (reading_id, measured.isoformat(), *((186, 104) if dangerous else (126, 80)))
        ).encode()
        request = (
            f"POST /api/v1/dosing-sessions/{session_id}/vital-readings HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{args.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        kind = None
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", args.port),
                    deadline - time.perf_counter(),
                )
            sent = time.perf_counter()
            if dangerous:
                load.dangerous[reading_id] = Dangerous(session_id, at, sent)
                load.by_time[(session_id, _ms(measured))] = reading_id
                load.by_session[session_id].append(reading_id)
            writer.write(request)
            assert reader is not None
            status, closes = await asyncio.wait_for(
                _response(reader), deadline - time.perf_counter()
            )
        except TimeoutError:
            kind, closes = "timeout", True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            kind, closes = f"connection ({type(e).__name__})", True
        else:
            done = time.perf_counter()
            load.ended = max(load.ended, done)
            load.sent_ms.append((done - sent) * 1000)
            load.schedule_ms.append((at - load.began, (done - at) * 1000))
            if 200 <= status < 300:
                load.accepted += 1
            else:
                kind = f"http {status}"
        if kind is not None:
            load.errors[kind] += 1
            if dangerous:
                load.dangerous.pop(reading_id, None)
        if closes and writer is not None:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _ticker(load: Load, stop: asyncio.Event) -> None:
    """The generator's own event loop lag: how late a 10 ms sleep wakes up."""
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        load.lags_ms.append((time.perf_counter() - began - 0.01) * 1000)


# --- the medical monitor's stream ---------------------------------------------------------------


def _on_stream_event(payload: dict[str, Any], arrived: float, load: Load) -> None:
    changes = payload.get("changes") or {}
    alert = payload.get("alert") or {}
    load.stream_events[f"{payload.get('type', '?')} {alert.get('rule_id')}"] += 1
    named = list((changes.get("finding") or {}).get("evidence", []))
    if changes.get("last_found_at") and alert.get("dosing_session_id"):
        key = (alert["dosing_session_id"], _ms(changes["last_found_at"]))
        if key in load.by_time:
            named.append(load.by_time[key])
    for reading_id in named:
        dangerous = load.dangerous.get(reading_id)
        if dangerous is not None and dangerous.stream is None:
            dangerous.stream, dangerous.stream_type = arrived, payload.get("type")


async def _listen(base: str, token: str, load: Load, ready: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", f"{base}/api/v1/alerts/stream", headers=headers) as response,
    ):
        response.raise_for_status()
        data: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
                continue
            if line or not data:
                continue
            arrived = time.perf_counter()
            payload = json.loads("\n".join(data))
            data = []
            if "last_event_id" in payload:
                ready.set()
            else:
                _on_stream_event(payload, arrived, load)


# --- the webhook receiver -----------------------------------------------------------------------


@dataclass
class Hooks:
    key: bytes | None = None
    deliveries: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    repeated: int = 0

    def verified(self, headers: dict[str, str], body: bytes) -> bool:
        message_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
        if self.key is None or not message_id or not stamp:
            return False
        signed = f"{message_id}.{stamp}.".encode() + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest())
        return any(
            hmac.compare_digest(signature.partition(",")[2].encode(), expected)
            for signature in headers.get("webhook-signature", "").split()
        )


async def _receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hooks: Hooks):
    try:
        while True:
            _, headers = _headers(await reader.readuntil(b"\r\n\r\n"))
            body = await _body(reader, headers)
            arrived = time.perf_counter()
            if not hooks.verified(headers, body):
                hooks.bad_signatures += 1
            elif headers["webhook-id"] in hooks.seen:
                hooks.repeated += 1  # a retry of a delivery already received
            else:
                hooks.seen.add(headers["webhook-id"])
                hooks.deliveries.append((arrived, json.loads(body)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    except asyncio.CancelledError:
        # the run is over and the server's kept-alive connection still open: end quietly
        # (a cancelled handler task makes asyncio print a traceback per connection)
        pass
    finally:
        writer.close()


async def _subscribe(base: str, token: str, port: int, hooks: Hooks) -> str | None:
    """Subscribes the receiver; None, or why webhooks are not measured."""
    body = {"channel": "webhook", "url": f"http://127.0.0.1:{port}/hook", "min_severity": "warning"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.post(
            "/api/v1/notification-subscriptions",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
    if response.status_code == 404:
        return "not available"
    if response.status_code != 201:
        return f"subscription refused: {response.status_code} {response.text[:300]}"
    secret = response.json()["secret"]
    hooks.key = base64.b64decode(secret.removeprefix("whsec_"))
    return None


def _evidence(data: dict[str, Any]) -> list[str]:
    for holder in (data, data.get("finding"), (data.get("alert") or {}).get("finding")):
        if isinstance(holder, dict) and isinstance(holder.get("evidence"), list):
            return [str(each) for each in holder["evidence"]]
    return []


def _match_hooks(hooks: Hooks, load: Load) -> Counter:
    """Each delivery's reading: the one its evidence or its last_found_at names, else the first
    dangerous reading of its session posted since the previous delivery for that session."""
    previous: dict[str, float] = {}
    types: Counter = Counter()
    for arrived, event in sorted(hooks.deliveries, key=lambda d: d[0]):
        kind = event.get("type", "?")
        types[kind] += 1
        data = event.get("data") or {}
        session_id = str(data.get("dosing_session_id") or "")
        named = [r for r in _evidence(data) if r in load.dangerous]
        found = data.get("last_found_at") or (data.get("alert") or {}).get("last_found_at")
        if found and (session_id, _ms(found)) in load.by_time:
            named.append(load.by_time[(session_id, _ms(found))])
        fresh = [r for r in named if load.dangerous[r].hook is None]
        if not fresh and kind in ("alert.opened", "alert.severity_raised", "alert.updated"):
            since = previous.get(session_id, 0.0)
            fresh = [
                r
                for r in load.by_session.get(session_id, [])
                if r in load.dangerous
                and load.dangerous[r].hook is None
                and since <= load.dangerous[r].sent < arrived
            ][:1]
        for reading_id in fresh:
            load.dangerous[reading_id].hook = arrived
        if session_id:
            previous[session_id] = arrived
    return types


# --- the run ------------------------------------------------------------------------------------


async def _run(base: str, seeded: dict[str, Any], args: argparse.Namespace, server_pid: int):
    load, hooks = Load(seeded["sessions"]), Hooks()
    receiver = await asyncio.start_server(
        lambda r, w: _receive(r, w, hooks), "127.0.0.1", args.webhook_port
    )
    hook_port = receiver.sockets[0].getsockname()[1]
    webhook = await _subscribe(base, seeded["admin"], hook_port, hooks)
    print(f"webhook: {webhook or f'subscribed, receiver on port {hook_port}'}", file=sys.stderr)
    ready = asyncio.Event()
    listener = asyncio.create_task(_listen(base, seeded["monitor"], load, ready))
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(args.settle)

    queue: asyncio.Queue = asyncio.Queue()
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(load, stop))
    cpu_before, usage_before = _cpu(server_pid), resource.getrusage(resource.RUSAGE_SELF)
    wall, load.began = datetime.now(UTC), time.perf_counter() + 0.5
    wall += timedelta(seconds=0.5)
    connections = [
        asyncio.create_task(_connection(queue, load, args, seeded["device"], wall))
        for _ in range(args.connections)
    ]
    await _schedule(queue, load, args)
    for _ in connections:
        queue.put_nowait(None)
    await asyncio.gather(*connections)
    cpu_after, usage_after = _cpu(server_pid), resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.perf_counter() - load.began
    stop.set()
    await ticker
    # the last alerts' events, and deliveries (the outbox polls): up to --grace seconds more,
    # the receiver done once it has been quiet for 3 s
    grace_until, heard, quiet_since = time.perf_counter() + args.grace, -1, 0.0
    while (now := time.perf_counter()) < grace_until:
        if len(hooks.deliveries) != heard:
            heard, quiet_since = len(hooks.deliveries), now
        streamed = all(d.stream is not None for d in load.dangerous.values())
        if streamed and (webhook is not None or now - quiet_since > 3):
            break
        await asyncio.sleep(0.25)
    if listener.done() and listener.exception() is not None:
        print(f"the stream ended: {listener.exception()!r}", file=sys.stderr)
    listener.cancel()
    receiver.close()
    cpu = {name: round((cpu_after[name] - cpu_before[name]) / elapsed, 2) for name in cpu_after}
    own = (usage_after.ru_utime + usage_after.ru_stime) - (
        usage_before.ru_utime + usage_before.ru_stime
    )
    cpu["load_generator"] = round(own / elapsed, 2)
    return load, hooks, webhook, cpu, elapsed


def _serve(url: str, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [VIGIL, "serve", "--port", str(args.port), "--workers", str(args.workers)],
            env=env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,  # its own process group, to be stopped as one
        )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{args.port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


def _stop(server: subprocess.Popen[bytes]) -> float | None:
    """Stops the server (SIGTERM, then SIGKILL to its process group after 30 s); the seconds it
    took to stop by itself, None if it had to be killed."""
    began = time.perf_counter()
    server.terminate()
    try:
        server.wait(timeout=30)
        return round(time.perf_counter() - began, 1)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        return None


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(_percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


def _figures(load, hooks, webhook, cpu, elapsed, args) -> dict[str, Any]:
    hook_types = _match_hooks(hooks, load) if webhook is None else Counter()
    dangerous = list(load.dangerous.values())
    stream = [(d.stream - d.sent) * 1000 for d in dangerous if d.stream is not None]
    stream_scheduled = [(d.stream - d.scheduled) * 1000 for d in dangerous if d.stream]
    opened = [(d.stream - d.sent) * 1000 for d in dangerous if d.stream_type == "alert.opened"]
    updated = [
        (d.stream - d.sent) * 1000
        for d in dangerous
        if d.stream is not None and d.stream_type != "alert.opened"
    ]
    hooked = [(d.hook - d.sent) * 1000 for d in dangerous if d.hook is not None]
    windows: dict[int, list[float]] = defaultdict(list)
    for offset, ms in load.schedule_ms:
        windows[int(offset // WINDOW_SECONDS)].append(ms)
    errors = sum(load.errors.values())
    stream_p99 = _stats(stream)["p99"]
    return {
        "benchmark": "soak",
        "database": "postgresql",
        "workers": args.workers,
        "sessions": args.sessions,
        "interval_s": args.interval,
        "seconds": args.seconds,
        "connections": args.connections,
        "offered_per_s": round(load.scheduled / args.seconds, 1),
        "scheduled": load.scheduled,
        "accepted": load.accepted,
        "readings_per_s": round(load.accepted / elapsed, 1),
        "elapsed_s": round(elapsed, 1),
        "errors": errors,
        "errors_by_kind": dict(load.errors),
        "request_ms": _stats(load.sent_ms),
        "request_from_schedule_ms": _stats([ms for _, ms in load.schedule_ms]),
        "request_from_schedule_p99_ms_by_30s": [
            round(_percentile(windows[w], 0.99), 1) for w in sorted(windows)
        ],
        "dangerous_accepted": len(dangerous),
        "stream_events": dict(load.stream_events),
        "stream_alerted": len(stream),
        "stream_alert_ms": _stats(stream),
        "stream_alert_from_schedule_ms": _stats(stream_scheduled),
        "stream_opened": len(opened),  # dangerous readings that opened an alert
        "stream_alert_opened_ms": _stats(opened),
        "stream_alert_updated_ms": _stats(updated),
        "webhook": webhook or "subscribed",
        "webhook_deliveries": len(hooks.deliveries) if webhook is None else None,
        "webhook_types": dict(hook_types) if webhook is None else None,
        "webhook_bad_signatures": hooks.bad_signatures if webhook is None else None,
        "webhook_repeated": hooks.repeated if webhook is None else None,
        "webhook_alerted": len(hooked) if webhook is None else None,
        "webhook_alert_ms": _stats(hooked) if webhook is None else None,
        "cpu_cores": cpu,
        "load_generator_loop_lag_ms": _stats(load.lags_ms),
        "goal": {
            "errors": 0,
            "stream_alert_p99_ms_under": GOAL_ALERT_P99_MS,
            "met": errors == 0 and stream_p99 is not None and stream_p99 < GOAL_ALERT_P99_MS,
        },
    }


def _readings_stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM vital_readings")).scalar_one())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--sessions", type=int, default=1000, help="dosing sessions in progress")
    parser.add_argument(
        "--interval", type=float, default=5, help="seconds between a tablet's posts"
    )
    parser.add_argument("--seconds", type=float, default=180, help="length of the load")
    parser.add_argument(
        "--dangerous-every", type=float, default=60, help="seconds between a session's dangerous"
    )
    parser.add_argument("--connections", type=int, default=48, help="the generator's pool")
    parser.add_argument("--timeout", type=float, default=10, help="seconds from a post's schedule")
    parser.add_argument("--settle", type=float, default=15, help="seconds idle before the load")
    parser.add_argument("--grace", type=float, default=15, help="seconds to wait for late alerts")
    parser.add_argument("--workers", type=int, default=2, help="vigil serve --workers")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--webhook-port", type=int, default=0, help="0: a free port")
    args = parser.parse_args()

    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}, "
        f"{args.sessions} sessions every {args.interval:g} s for {args.seconds:g} s, "
        f"{args.workers} workers",
        file=sys.stderr,
    )
    url, name = _scratch_database(args.postgres)
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    log = Path(tempfile.mkdtemp(prefix="vigil-soak-")) / "server.log"
    server, stop_s = None, None
    try:
        for command in (["migrate"], ["protocol", "load"], ["demo"]):
            subprocess.run([VIGIL, *command], env=env, check=True, capture_output=True)
        began = time.perf_counter()
        seeded = _seed_many(url, args.sessions)
        print(f"seeded in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        stored_before = _readings_stored(url)
        server = _serve(url, args, log)
        gc.collect()
        gc.freeze()  # what the generator holds after seeding stays out of full collections
        base = f"http://127.0.0.1:{args.port}"
        load, hooks, webhook, cpu, elapsed = asyncio.run(_run(base, seeded, args, server.pid))
    finally:
        if server is not None:
            stop_s = _stop(server)
        stored = _readings_stored(url) - stored_before if server is not None else None
        _drop(args.postgres, name)

    figures = _figures(load, hooks, webhook, cpu, elapsed, args)
    figures["server_stop_s"] = stop_s  # None: killed after 30 s
    # what the server stored, answered in time or not: a reading stored after its tablet gave
    # up is work done for nobody (the tablet sends it again and hears "duplicate")
    figures["stored"] = stored
    figures["stored_per_s"] = round(stored / elapsed, 1) if stored is not None else None
    figures["stored_unanswered"] = stored - load.accepted if stored is not None else None
    request, scheduled = figures["request_ms"], figures["request_from_schedule_ms"]
    stream, hook = figures["stream_alert_ms"], figures["webhook_alert_ms"] or {}
    print(
        f"{load.accepted} of {load.scheduled} readings accepted in {elapsed:.1f} s: "
        f"{figures['readings_per_s']}/s (offered {figures['offered_per_s']}/s); errors "
        f"{figures['errors']} {figures['errors_by_kind']}; stored {figures['stored']} "
        f"({figures['stored_per_s']}/s), {figures['stored_unanswered']} of them after the "
        "client gave up\n"
        f"request p50 {request['p50']} ms, p99 {request['p99']} ms; from schedule p50 "
        f"{scheduled['p50']} ms, p99 {scheduled['p99']} ms, p99 by 30 s "
        f"{figures['request_from_schedule_p99_ms_by_30s']}\n"
        f"stream: {figures['stream_alerted']}/{figures['dangerous_accepted']} dangerous readings "
        f"alerted, p50 {stream['p50']} ms, p99 {stream['p99']} ms, max {stream['max']} ms "
        f"(opened p99 {figures['stream_alert_opened_ms']['p99']}, updated p99 "
        f"{figures['stream_alert_updated_ms']['p99']})\n"
        f"webhook: {figures['webhook']}; {figures['webhook_alerted']} alerted, p50 "
        f"{hook.get('p50')} ms, p99 {hook.get('p99')} ms, max {hook.get('max')} ms\n"
        f"CPU (cores): {cpu}; generator loop lag p99 "
        f"{figures['load_generator_loop_lag_ms']['p99']} ms; goal met: {figures['goal']['met']}",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
