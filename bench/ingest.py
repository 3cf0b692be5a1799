"""Vital-reading ingest through the running server: readings/s and batch latency.

Starts `vigil serve` on a scratch database (SQLite by default, or --database-url), seeds the demo
study, creates a bedside-tablet device, then posts batches of readings with its device token into
the live dosing session from this process and prints the figures; the last line is one JSON
object. Run: `.venv/bin/python bench/ingest.py`.
"""

import argparse
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

import httpx

from app.demo.seed import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
VIGIL = str(ROOT / ".venv" / "bin" / "vigil")


def _reading(at: datetime) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": at.isoformat(),
        "observations": [
            {"code": "SYSBP", "value": 128, "unit": "mmHg"},
            {"code": "DIABP", "value": 82, "unit": "mmHg"},
            {"code": "PULSE", "value": 88, "unit": "beats/min"},
            {"code": "TEMP", "value": 37.1, "unit": "C"},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    # 20 x 25 = 500 readings: one session measured every minute for 8 hours. Every batch is
    # judged by the rules engine against the whole session, so far larger sessions cost more
    # per batch (bench/rules_engine.py shows how the engine scales).
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="vigil-bench-")
    env = os.environ | {
        "VIGIL_DATABASE_URL": args.database_url or f"sqlite:///{scratch}/bench.db",
        "VIGIL_LOG_LEVEL": "warning",
    }
    subprocess.run([VIGIL, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([VIGIL, "demo"], env=env, check=True, capture_output=True)
    device = subprocess.run(
        [VIGIL, "device", "create", "bench-tablet", "--site", "S01", "--study", "DEMO-MAPP"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    device_token = device.stdout.strip().splitlines()[-1]
    server = subprocess.Popen(
        [VIGIL, "serve", "--port", str(args.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(100):
                try:
                    client.get("/api/v1/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            login = client.post(
                "/api/v1/auth/login",
                json={"username": "therapist1", "password": DEMO_PASSWORD},
            )
            staff = {"Authorization": f"Bearer {login.json()['access_token']}"}
            live = client.get(
                "/api/v1/dosing-sessions", params={"status": "in_progress"}, headers=staff
            )
            session_id = live.json()["items"][0]["id"]
            client.headers["Authorization"] = f"Bearer {device_token}"  # the tablet posts
            url = f"/api/v1/dosing-sessions/{session_id}/vital-readings/batch"
            start_at = datetime.now(UTC) - timedelta(minutes=50)
            latencies, accepted = [], 0
            began = time.perf_counter()
            for b in range(args.batches):
                batch = [
                    _reading(start_at + timedelta(milliseconds=b * args.batch_size + i))
                    for i in range(args.batch_size)
                ]
                t = time.perf_counter()
                response = client.post(url, json={"readings": batch})
                latencies.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()
                accepted += response.json()["accepted"]
            elapsed = time.perf_counter() - began
            replay_t = time.perf_counter()
            replay = client.post(url, json={"readings": batch}).json()
            replay_ms = (time.perf_counter() - replay_t) * 1000
    finally:
        server.terminate()
        server.wait(timeout=10)
    latencies.sort()
    figures = {
        "benchmark": "ingest",
        "database": "postgresql" if args.database_url else "sqlite",
        "batches": args.batches,
        "batch_size": args.batch_size,
        "accepted": accepted,
        "readings_per_s": round(accepted / elapsed),
        "batch_ms_p50": round(statistics.median(latencies), 1),
        "batch_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "replayed_batch_duplicates": replay["duplicates"],
        "replayed_batch_ms": round(replay_ms, 1),
    }
    print(
        f"{accepted} readings in {elapsed:.2f}s ({figures['readings_per_s']}/s), "
        f"batch p50 {figures['batch_ms_p50']} ms, p99 {figures['batch_ms_p99']} ms",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
