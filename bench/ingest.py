"""Vital-reading ingest through the running server, against the raw insert rate of the same rows.

For each database (SQLite; and PostgreSQL with --postgres ADMIN_URL, on a fresh, uniquely named
database dropped afterwards): migrate, seed the demo study plus --sessions dosing sessions in
progress at S01 and a bedside-tablet device (bench/alert_latency.py's seed), start `vigil serve`
(one uvicorn worker unless --workers, the scheduler off), then drive it from another process
with `wrk` (Debian's compiled load generator; a Python client would take the CPU the server
needs on two cores), each Lua-scripted request a new reading with a fresh UUID for one of the
sessions in turn:

- single readings, POST /dosing-sessions/{id}/vital-readings, with 1 and with 16 connections;
- batches of --batch readings, POST .../vital-readings/batch, with 2 connections;

each for --seconds, printing requests/s, readings/s, p50/p99 latency and any non-2xx answer.
Then, with the server stopped, the raw insert rate of the same rows (copies of what the server
stored, new ids) into the same table of the same database, in transactions of the same size (1
row, and --batch rows), through the driver itself on a connection set up as Vigil's are:
executemany, and COPY on PostgreSQL; and the same readings inserted together with copies of
their audit records (what Vigil must write per reading), the floor of any audited ingest. The
server's figures include what it does per reading beside the insert: validation, the audit
record and its hash, rule evaluation, alerts.

Needs `wrk` (apt-get install -y wrk). Run: `.venv/bin/python bench/ingest.py [--postgres
postgresql://postgres@127.0.0.1:5432/test]`. The last line is one JSON object with the ratios.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from alert_latency import _drop, _scratch_database, _seed  # noqa: E402
from soak import _cpu  # noqa: E402

from app.db import make_engine  # noqa: E402

VIGIL = str(ROOT.parent / ".venv" / "bin" / "vigil")

# One request: a new reading (or --batch of them) with a fresh UUID, for the next session in
# turn, measured a few milliseconds after the previous one of this thread, from 50 min ago.
LUA = r"""
local sessions = {SESSIONS}
local batch = {BATCH}
local counter = 0
thread_number = 0
local start = os.time() - 3000

function setup(thread)
  thread:set("thread_number", thread_number)
  thread_number = thread_number + 1
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_number)
end

local function uuid4()
  local template = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (string.gsub(template, "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

local function reading()
  counter = counter + 1
  local ms = counter * 7 + thread_number
  local at = os.date("!%Y-%m-%dT%H:%M:%S", start + math.floor(ms / 1000))
  return string.format(
    '{"id":"%s","measured_at":"%s.%03dZ","observations":[' ..
    '{"code":"SYSBP","value":%d,"unit":"mmHg"},{"code":"DIABP","value":82,"unit":"mmHg"},' ..
    '{"code":"PULSE","value":88,"unit":"beats/min"},{"code":"TEMP","value":37.0,"unit":"C"}]}',
    uuid4(), at, ms % 1000, 120 + counter % 20)
end

function request()
  local session = sessions[(counter % #sessions) + 1]
  local body
  local path = "/api/v1/dosing-sessions/" .. session .. "/vital-readings"
  if batch > 1 then
    local readings = {}
    for i = 1, batch do readings[i] = reading() end
    body = '{"readings":[' .. table.concat(readings, ",") .. "]}"
    path = path .. "/batch"
  else
    body = reading()
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer {TOKEN}",
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests":%d,"seconds":%.3f,"p50_ms":%.2f,"p99_ms":%.2f,"non_2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _measured(server: subprocess.Popen[bytes], base: str, seed: dict[str, Any], *load: int) -> dict:
    """A wrk load with the CPU it cost the server (its worker processes) and PostgreSQL, in ms
    per request: what a post costs, whatever the machine's speed or load."""
    before = _cpu(server.pid)
    figures = _wrk(base, seed, *load)
    after = _cpu(server.pid)
    for part in ("server", "postgres"):
        spent = after[part] - before[part]
        figures[f"{part}_cpu_ms_per_request"] = 1000 * spent / max(1, figures["requests"])
    return figures


def _wrk(base: str, seed: dict[str, Any], connections: int, batch: int, seconds: int) -> dict:
    sessions = "{" + ",".join(f'"{s}"' for s in seed["sessions"]) + "}"
    script = LUA.replace("{SESSIONS}", sessions).replace("{BATCH}", str(batch))
    script = script.replace("{TOKEN}", seed["device"])
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    done = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "30s", "-s", file.name, base],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(file.name)
    line = next(row for row in done.stdout.splitlines() if row.startswith("WRK "))
    figures = json.loads(line[4:])
    figures["per_s"] = figures["requests"] / figures["seconds"]
    figures["readings_per_s"] = figures["per_s"] * batch
    return figures


def _serve(url: str, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "VIGIL_DATABASE_URL": url,
        "VIGIL_LOG_LEVEL": "warning",
        "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0",
    }
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [VIGIL, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=sink,
            stderr=sink,
        )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


def _stored_rows(
    engine: Engine, count: int, table: str = "vital_readings", where: str = "1 = 1"
) -> tuple[list[str], list[list[Any]]]:
    """Rows the server stored, as the driver reads them (its own representation of each
    value), and their column names."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT * FROM {table} WHERE {where} LIMIT {int(count)}")
        columns = [column[0] for column in cursor.description]
        return columns, [list(row) for row in cursor.fetchall()]
    finally:
        raw.close()


def _fresh(columns: list[str], rows: list[list[Any]], sqlite: bool) -> list[list[Any]]:
    """Copies with new ids, the JSON column wrapped for psycopg."""
    at = columns.index("id")
    copies = []
    for row in rows:
        copy = list(row)
        copy[at] = uuid.uuid4().hex if sqlite else uuid.uuid4()
        if not sqlite:
            from psycopg.types.json import Json

            copy = [Json(v) if isinstance(v, dict) else v for v in copy]
        copies.append(copy)
    return copies


def _raw_rate(engine: Engine, columns: list[str], rows: list[list[Any]], size: int) -> float:
    """Rows/s inserting copies of ``rows`` with the driver's executemany, committed every
    ``size`` rows, on a connection set up as Vigil's are (app.db.make_engine)."""
    sqlite = engine.dialect.name == "sqlite"
    marks = ", ".join(["?" if sqlite else "%s"] * len(columns))
    statement = f"INSERT INTO vital_readings ({', '.join(columns)}) VALUES ({marks})"
    copies = _fresh(columns, rows, sqlite)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        began = time.perf_counter()
        for first in range(0, len(copies), size):
            if sqlite:  # Vigil's SQLite connections leave BEGIN to the caller (app/db.py)
                cursor.execute("BEGIN")
            cursor.executemany(statement, copies[first : first + size])
            raw.commit()
        return len(copies) / (time.perf_counter() - began)
    finally:
        raw.close()


def _raw_audited_rate(
    engine: Engine, readings: tuple[list[str], list[list[Any]]], size: int
) -> float:
    """Readings/s inserting copies of the readings together with copies of their audit records
    (the rows Vigil writes for each reading: the reading and one audit record), both by
    executemany in transactions of ``size`` readings; the records keep their stored hashes
    (the chain's hashing is not counted)."""
    sqlite = engine.dialect.name == "sqlite"
    columns, rows = readings
    audit_columns, audits = _stored_rows(
        engine, len(rows), "audit_records", "entity_type = 'vital_readings' AND action = 'create'"
    )
    audits = (audits * (len(rows) // max(len(audits), 1) + 1))[: len(rows)]
    copies = _fresh(columns, rows, sqlite)
    audit_copies = _fresh(audit_columns, audits, sqlite)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT coalesce(max(sequence), 0) FROM audit_records")
        (sequence,) = cursor.fetchone()
        for record, reading in zip(audit_copies, copies, strict=True):
            sequence += 1
            record[audit_columns.index("sequence")] = sequence
            record[audit_columns.index("entity_id")] = str(reading[columns.index("id")])
        if sqlite:
            raw.commit()
        mark = "?" if sqlite else "%s"
        statements = [
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
            for table, names in (("vital_readings", columns), ("audit_records", audit_columns))
        ]
        began = time.perf_counter()
        for first in range(0, len(copies), size):
            if sqlite:
                cursor.execute("BEGIN")
            cursor.executemany(statements[0], copies[first : first + size])
            cursor.executemany(statements[1], audit_copies[first : first + size])
            raw.commit()
        return len(copies) / (time.perf_counter() - began)
    finally:
        raw.close()


def _copy_rate(engine: Engine, columns: list[str], rows: list[list[Any]], size: int) -> float:
    """PostgreSQL: the same rows by COPY, one COPY per transaction of ``size`` rows."""
    copies = _fresh(columns, rows, sqlite=False)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        began = time.perf_counter()
        for first in range(0, len(copies), size):
            with cursor.copy(f"COPY vital_readings ({', '.join(columns)}) FROM STDIN") as copy:
                for row in copies[first : first + size]:
                    copy.write_row(row)
            raw.commit()
        return len(copies) / (time.perf_counter() - began)
    finally:
        raw.close()


def _one_database(name: str, postgres_admin: str | None, args: argparse.Namespace) -> dict:
    url, scratch_name = _scratch_database(postgres_admin)
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    log = Path(tempfile.mkdtemp(prefix="vigil-bench-")) / "server.log"
    server = None
    try:
        for command in (["migrate"], ["demo"]):
            subprocess.run([VIGIL, *command], env=env, check=True, capture_output=True)
        seed = _seed(url, args.sessions, args.history_hours)
        server = _serve(url, args.port, log, args.workers)
        base = f"http://127.0.0.1:{args.port}"
        runs = {
            "single_1": _measured(server, base, seed, 1, 1, args.seconds),
            "single_16": _measured(server, base, seed, 16, 1, args.seconds),
            f"batch_{args.batch}_2": _measured(server, base, seed, 2, args.batch, args.seconds),
        }
        server.terminate()
        server.wait(timeout=30)
        server = None
        engine = make_engine(url)
        try:
            columns, rows = _stored_rows(engine, args.raw_rows)
            raw = {
                "executemany_1": _raw_rate(engine, columns, rows[: args.raw_rows // 10], 1),
                f"executemany_{args.batch}": _raw_rate(engine, columns, rows, args.batch),
            }
            if postgres_admin:
                raw[f"copy_{args.batch}"] = _copy_rate(engine, columns, rows, args.batch)
            audited = {
                "executemany_1": _raw_audited_rate(
                    engine, (columns, rows[: args.raw_rows // 10]), 1
                ),
                f"executemany_{args.batch}": _raw_audited_rate(engine, (columns, rows), args.batch),
            }
        finally:
            engine.dispose()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if postgres_admin and scratch_name:
            _drop(postgres_admin, scratch_name)
    history = f", {args.history_hours:g} h of history each" if args.history_hours else ""
    print(f"\n{name} ({args.sessions} live sessions{history}, {args.seconds} s per load)")
    for label, run in runs.items():
        print(
            f"  {label:<14} {run['per_s']:8.1f} requests/s {run['readings_per_s']:9.1f} readings/s"
            f"  p50 {run['p50_ms']:7.1f} ms  p99 {run['p99_ms']:7.1f} ms"
            f"  non-2xx {run['non_2xx']}  errors {run['errors']}"
            f"  CPU/request: server {run['server_cpu_ms_per_request']:.1f} ms,"
            f" PostgreSQL {run['postgres_cpu_ms_per_request']:.1f} ms"
        )
    for label, rate in raw.items():
        print(f"  raw {label:<16} {rate:9.0f} rows/s")
    for label, rate in audited.items():
        print(f"  raw + audit {label:<8} {rate:9.0f} readings/s (each with its audit record)")
    best_raw = max(rate for label, rate in raw.items() if label.endswith(f"_{args.batch}"))
    batch = runs[f"batch_{args.batch}_2"]
    return {
        "history_hours": args.history_hours,
        "single_1_per_s": round(runs["single_1"]["per_s"], 1),
        "single_16_per_s": round(runs["single_16"]["per_s"], 1),
        "single_16_p99_ms": runs["single_16"]["p99_ms"],
        "single_16_server_cpu_ms": round(runs["single_16"]["server_cpu_ms_per_request"], 2),
        "single_16_postgres_cpu_ms": round(runs["single_16"]["postgres_cpu_ms_per_request"], 2),
        "batch_readings_per_s": round(batch["readings_per_s"]),
        "batch_p50_ms": batch["p50_ms"],
        "batch_p99_ms": batch["p99_ms"],
        "raw_rows_per_s": {label: round(rate) for label, rate in raw.items()},
        "raw_with_audit_readings_per_s": {label: round(rate) for label, rate in audited.items()},
        "single_16_vs_goal_1000": round(runs["single_16"]["per_s"] / 1000, 3),
        "batch_vs_raw": round(batch["readings_per_s"] / best_raw, 4),
        "raw_with_audit_vs_raw": round(audited[f"executemany_{args.batch}"] / best_raw, 3),
        "single_1_vs_raw_with_audit_1": round(
            runs["single_1"]["per_s"] / audited["executemany_1"], 3
        ),
        "non_2xx": sum(run["non_2xx"] for run in runs.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="also run on PostgreSQL")
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument(
        "--history-hours",
        type=float,
        default=0,
        help="each session dosed this long ago, with a reading every 5 min since (default: "
        "sessions dosed 50 min ago, no readings)",
    )
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--raw-rows", type=int, default=5000)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--workers", type=int, default=1, help="vigil serve --workers")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py drives the server with wrk: apt-get install -y wrk")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}")
    result: dict[str, Any] = {"benchmark": "ingest", "workers": args.workers}
    if not args.skip_sqlite:
        result["sqlite"] = _one_database("SQLite", None, args)
    if args.postgres:
        result["postgresql"] = _one_database("PostgreSQL", args.postgres, args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
