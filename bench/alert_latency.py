"""Reading-to-alert latency through the running server, and rule evaluations per second.

Starts `vigil serve` (one uvicorn worker, the scheduler on) on a scratch database: SQLite by
default, or a fresh, uniquely named PostgreSQL database with --postgres ADMIN_URL (dropped
afterwards). Seeds the demo study plus --sessions dosing sessions in progress at site S01 (dosed
50 min ago) and one bedside-tablet device, then:

- a medical monitor listens on GET /api/v1/alerts/stream (Server-Sent Events);
- each session's tablet posts a burst of --burst readings every burst/rate-per-session seconds,
  so the whole study sends --rate readings/s for --seconds; every --dangerous-every-th burst
  of a tablet carries one reading with a systolic BP of 186 mmHg, a critical finding, the
  tablets taking turns so that dangerous bursts come at an even pace (not all in one second);
- the latency of a dangerous reading is the time from just before its POST is sent to the
  arrival of the first stream event whose change names that reading as evidence.

Also measures the rule evaluations per second of the engine on sessions of the size the load
leaves behind (the server's own evaluations per second are the accepted bursts per second).
Prints the figures; the last line is one JSON object.
Run: `.venv/bin/python bench/alert_latency.py [--postgres ADMIN_URL]`.
"""

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
VIGIL = str(ROOT / ".venv" / "bin" / "vigil")
NORMAL = {"SYSBP": 126, "DIABP": 80, "PULSE": 84, "TEMP": 36.9}
UNITS = {"SYSBP": "mmHg", "DIABP": "mmHg", "PULSE": "beats/min", "TEMP": "C"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# --- the scratch database -------------------------------------------------------------------------


def _scratch_database(postgres_admin: str | None) -> tuple[str, str | None]:
    """(the database URL, the PostgreSQL database name to drop afterwards)."""
    if postgres_admin is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='vigil-bench-')}/bench.db", None
    name = f"vigil_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(postgres_admin).set(database=name).render_as_string(hide_password=False)
    return url, name


def _drop(postgres_admin: str, name: str) -> None:
    admin = create_engine(postgres_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(url: str, sessions: int, history_hours: float = 0) -> dict[str, Any]:
    """The demo's study plus ``sessions`` dosing sessions in progress at S01; a tablet for S01
    and a medical monitor's API token. With ``history_hours``, each session's initial dose was
    that long ago and it holds a routine reading every 5 min since 10 min before it, as a
    session late in its day does."""
    os.environ["VIGIL_DATABASE_URL"] = url
    from app import listeners
    from app.auth import tokens
    from app.db import make_engine
    from app.dosing import doses
    from app.dosing import service as dosing
    from app.dosing.schemas import DoseCreate
    from app.models import Site, Study, Visit
    from app.participants import service as participants
    from app.participants.schemas import Enrolment, ParticipantCreate
    from app.permissions import Role
    from app.users import service as users

    listeners.install()  # the audit trail's, as the server installs them
    now = datetime.now(UTC)
    engine = make_engine(url)
    ids = []
    with Session(engine) as session:
        session.info["actor"] = "bench"
        study = session.scalars(select(Study).where(Study.code == "DEMO-MAPP")).one()
        site = session.scalars(
            select(Site).where(Site.study_id == study.id, Site.code == "S01")
        ).one()
        for n in range(sessions):
            participant = participants.create(
                session,
                study,
                ParticipantCreate(
                    site_id=site.id,
                    subject_id=f"01-B{n:03d}",
                    sex="F",
                    age_years=40,
                    consented_on=now.date() - timedelta(days=60),
                ),
            )
            participants.enrol(
                session,
                participant,
                Enrolment(enrolled_on=datetime.now(UTC).date() - timedelta(days=50)),
            )
            participants.randomise(session, participant)
            visit = session.scalars(
                select(Visit).where(Visit.participant_id == participant.id, Visit.code == "EXP1")
            ).one()
            dosing_session = dosing.create_session(session, participant, visit)
            dosed = now - timedelta(hours=history_hours or 50 / 60)
            dosing.start(session, dosing_session, dosed - timedelta(minutes=10))
            doses.record_dose(
                session,
                dosing_session,
                DoseCreate(
                    kind="initial",
                    amount_mg=80,
                    administered_at=dosed,
                    deviation_reason="benchmark data: no therapist pair is attested",
                ),
            )
            if history_hours:
                _history(session, dosing_session, dosed, now)
            ids.append(str(dosing_session.id))
        _, device_token = users.create_device(session, "bench-tablet", site.id)
        monitor = users.create_user(
            session,
            username="bench-monitor",
            display_name="Bench Monitor",
            role=Role.MEDICAL_MONITOR,
            password="bench password, long enough",
        )
        _, monitor_token = tokens.issue(session, monitor, tokens.TokenKind.API)
        session.commit()
    engine.dispose()
    return {"sessions": ids, "device": device_token, "monitor": monitor_token}


def _history(session: Session, dosing_session: Any, dosed: datetime, now: datetime) -> None:
    from app.vitals import service as vitals

    readings = []
    at = dosed - timedelta(minutes=10)
    while at < now - timedelta(minutes=1):
        readings.append(
            {
                "id": str(uuid.uuid4()),
                "measured_at": at.isoformat(),
                "observations": [
                    {"code": code, "value": value, "unit": UNITS[code]}
                    for code, value in NORMAL.items()
                ],
            }
        )
        at += timedelta(minutes=5)
    result = vitals.ingest_batch(session, dosing_session, readings, "bench-history")
    assert result.accepted == len(readings), result


# --- the load and the listener ------------------------------------------------------------------


class Run:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}  # dangerous reading id -> perf_counter before its POST
        self.latencies_ms: dict[str, float] = {}
        self.request_ms: list[float] = []
        self.accepted = 0
        self.failures = 0
        self.events = 0
        self.ready = asyncio.Event()


async def _listen(base: str, token: str, run: Run, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
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
            if "last_event_id" in payload:  # the ready event
                run.ready.set()
                continue
            run.events += 1
            finding = payload["changes"].get("finding") or {}
            for reading_id in finding.get("evidence", []):
                sent = run.sent.get(reading_id)
                if sent is not None and reading_id not in run.latencies_ms:
                    run.latencies_ms[reading_id] = (arrived - sent) * 1000
            if stop.is_set() and len(run.latencies_ms) >= len(run.sent):
                return


def _reading(at: datetime, dangerous: bool) -> dict[str, Any]:
    values = {**NORMAL, "SYSBP": 186, "DIABP": 104} if dangerous else NORMAL
    return {
        "id": str(uuid.uuid4()),
        "measured_at": at.isoformat(),
        "observations": [
            {"code": code, "value": value, "unit": UNITS[code]} for code, value in values.items()
        ],
    }


async def _tablet(
    client: httpx.AsyncClient,
    session_id: str,
    number: int,
    args: argparse.Namespace,
    run: Run,
    deadline: float,
) -> None:
    per_session = args.rate / args.sessions
    period = args.burst / per_session
    url = f"/api/v1/dosing-sessions/{session_id}/vital-readings/batch"
    await asyncio.sleep(number / args.sessions * period)
    burst_number, next_at = 0, time.perf_counter()
    measured = datetime.now(UTC) - timedelta(minutes=45)
    while time.perf_counter() < deadline:
        burst_number += 1
        dangerous = (burst_number + number) % args.dangerous_every == 0
        readings = []
        for i in range(args.burst):
            measured += timedelta(seconds=1)
            readings.append(_reading(measured, dangerous and i == args.burst - 1))
        started = time.perf_counter()
        if dangerous:
            run.sent[readings[-1]["id"]] = started
        response = await client.post(url, json={"readings": readings})
        run.request_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code == 200:
            run.accepted += response.json()["accepted"]
        else:
            run.failures += 1
            if dangerous:
                run.sent.pop(readings[-1]["id"], None)
        next_at += period
        if next_at >= deadline:
            break
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _load(base: str, seeded: dict[str, Any], args: argparse.Namespace) -> Run:
    run, stop = Run(), asyncio.Event()
    listener = asyncio.create_task(_listen(base, seeded["monitor"], run, stop))
    await asyncio.wait_for(run.ready.wait(), 10)
    limits = httpx.Limits(max_connections=len(seeded["sessions"]) + 4)
    headers = {"Authorization": f"Bearer {seeded['device']}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=30, limits=limits
    ) as client:
        began = time.perf_counter()
        deadline = began + args.seconds
        await asyncio.gather(
            *(
                _tablet(client, session_id, n, args, run, deadline)
                for n, session_id in enumerate(seeded["sessions"])
            )
        )
        run.elapsed = time.perf_counter() - began  # type: ignore[attr-defined]
    stop.set()
    try:
        await asyncio.wait_for(listener, 10)
    except TimeoutError:
        listener.cancel()
    return run


# --- the engine on its own ----------------------------------------------------------------------


def _engine_rate(readings: int) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    from rules_engine import snapshot

    from app.protocols.loader import load_protocol_file
    from app.rules import evaluate

    protocol = load_protocol_file(ROOT / "protocols" / "mdma-ptsd-phase3.yaml").protocol
    snap = snapshot(readings)
    runs, began = 0, time.perf_counter()
    while time.perf_counter() - began < 1.0:
        evaluate(protocol, snap)
        runs += 1
    return runs / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--rate", type=float, default=200, help="readings per second, in all")
    parser.add_argument("--sessions", type=int, default=40, help="dosing sessions in progress")
    parser.add_argument("--burst", type=int, default=5, help="readings per tablet post")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--dangerous-every", type=int, default=4, help="every n-th burst")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    url, pg_name = _scratch_database(args.postgres)
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    server = None
    try:
        for command in (["migrate"], ["protocol", "load"], ["demo"]):
            subprocess.run([VIGIL, *command], env=env, check=True, capture_output=True)
        seeded = _seed(url, args.sessions)
        server = subprocess.Popen(
            [VIGIL, "serve", "--port", str(args.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        # The load generator's own garbage collector must not stop the clock it reads: what it
        # holds after seeding is kept out of the collector's full passes.
        gc.collect()
        gc.freeze()
        run = asyncio.run(_load(base, seeded, args))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        if pg_name is not None and args.postgres:
            _drop(args.postgres, pg_name)

    latencies = list(run.latencies_ms.values())
    elapsed = run.elapsed  # type: ignore[attr-defined]
    per_session = run.accepted / args.sessions
    figures = {
        "benchmark": "alert_latency",
        "database": "postgresql" if args.postgres else "sqlite",
        "workers": 1,
        "sessions": args.sessions,
        "burst": args.burst,
        "target_readings_per_s": args.rate,
        "readings_per_s": round(run.accepted / elapsed, 1),
        "accepted": run.accepted,
        "failed_posts": run.failures,
        "post_ms_p50": round(statistics.median(run.request_ms), 1),
        "post_ms_p99": round(_percentile(run.request_ms, 0.99), 1),
        "dangerous_readings": len(run.sent),
        "alerted": len(latencies),
        "stream_events": run.events,
        "alert_latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "alert_latency_ms_p99": round(_percentile(latencies, 0.99), 1) if latencies else None,
        "alert_latency_ms_max": round(max(latencies), 1) if latencies else None,
        "readings_per_session_at_end": round(per_session),
        "engine_evaluations_per_s_at_that_size": round(_engine_rate(max(1, round(per_session))), 1),
    }
    print(
        f"{run.accepted} readings in {elapsed:.1f}s ({figures['readings_per_s']}/s, target "
        f"{args.rate}) over {args.sessions} sessions; post p50 {figures['post_ms_p50']} ms, "
        f"p99 {figures['post_ms_p99']} ms; {len(latencies)}/{len(run.sent)} dangerous readings "
        f"alerted, reading-to-stream p50 {figures['alert_latency_ms_p50']} ms, "
        f"p99 {figures['alert_latency_ms_p99']} ms",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
