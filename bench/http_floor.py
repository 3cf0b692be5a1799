"""The floor under bench/ingest.py's single posts: the same stack doing nothing but store a row.

A FastAPI app of one route, served as `vigil serve` serves Vigil (uvicorn, one worker, the
route a plain ``def`` run in the threadpool), takes the same request bench/ingest.py's wrk
script sends (a reading of four observations, as JSON, with a bearer token), validates it with
a pydantic model and inserts one row into a SQLite database in WAL mode with
``synchronous=FULL``, committed before it answers, as Vigil's SQLite connections are set up
(app/db.py). No authentication, audit record, rule evaluation or alert. Driven by ``wrk`` with
1 and 16 connections for --seconds each, then ``--with-audit`` adds a second insert of a
600-byte JSON row per request, the size of a reading's audit record.

What it shows: how many single posts a second one Python worker of this stack can answer at
all on this machine, the ceiling of any single-post ingest built on it. Run:
`.venv/bin/python bench/http_floor.py`; the last line is one JSON object.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from ingest import _wrk  # noqa: E402

APP = r"""
import json
import os
import sqlite3
import threading
import uuid
from datetime import datetime

from fastapi import FastAPI
from pydantic import BaseModel

AUDIT = os.environ["FLOOR_AUDIT"] == "1"
local = threading.local()
app = FastAPI()


class Observation(BaseModel):
    code: str
    value: float
    unit: str


class Reading(BaseModel):
    id: uuid.UUID
    measured_at: datetime
    observations: list[Observation]


def connection() -> sqlite3.Connection:
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None)
        local.db.execute("PRAGMA journal_mode=WAL")
        local.db.execute("PRAGMA synchronous=FULL")
        local.db.execute("PRAGMA busy_timeout=30000")
    return local.db


@app.post("/api/v1/dosing-sessions/{session_id}/vital-readings", status_code=201)
def post(session_id: str, reading: Reading) -> dict:
    db = connection()
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "INSERT INTO readings VALUES (?, ?, ?, ?)",
        (reading.id.hex, session_id, reading.measured_at.isoformat(), reading.model_dump_json()),
    )
    if AUDIT:
        db.execute("INSERT INTO audit VALUES (?, ?)", (reading.id.hex, "x" * 600))
    db.commit()
    return {"id": str(reading.id), "status": "accepted"}
"""


def _serve(app_dir: Path, database: Path, audit: bool, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "FLOOR_DB": str(database),
        "FLOOR_AUDIT": "1" if audit else "0",
        "PYTHONPATH": str(app_dir),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("the floor app did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=8768)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/http_floor.py drives the server with wrk: apt-get install -y wrk")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="vigil-floor-"))
    (work / "floor_app.py").write_text(APP)
    seed = {"sessions": ["00000000-0000-7000-8000-000000000001"], "device": "unused"}
    result: dict[str, object] = {"benchmark": "http_floor"}
    for audit in (False, True):
        database = work / f"floor-{int(audit)}.sqlite"
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE readings (id, session_id, measured_at, body)")
            db.execute("CREATE TABLE audit (entity_id, record)")
        server = _serve(work, database, audit, args.port)
        try:
            label = "insert + audit row" if audit else "insert"
            for connections in (1, 16):
                run = _wrk(f"http://127.0.0.1:{args.port}", seed, connections, 1, args.seconds)
                print(
                    f"  {label:<18} {connections:>2} connections {run['per_s']:8.1f} posts/s"
                    f"  p50 {run['p50_ms']:6.1f} ms  p99 {run['p99_ms']:6.1f} ms"
                    f"  non-2xx {run['non_2xx']}"
                )
                key = f"{'audit_' if audit else ''}single_{connections}_per_s"
                result[key] = round(run["per_s"], 1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    shutil.rmtree(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
