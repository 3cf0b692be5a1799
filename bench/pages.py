"""Server time of every page of the web client on the demo data (goal: each under 200 ms).

Starts `vigil serve` (one uvicorn worker) on a scratch database (SQLite by default, or
--database-url for an empty, migrated-here PostgreSQL database), seeds the demo study, signs in
through the sign-in form as the demo's clinicians, coordinator and sponsor, finds the records
to open through the API, then requests each page --requests times after --warmup unmeasured
requests, one at a time. The server time of a request is the duration its own request-log line
gives (app/request_log.py: from the first byte in to the last byte out), matched by the
X-Request-ID this script sends; the client's round trip is printed beside it. A page the server
does not have yet (404 for a route) is listed as absent. The last line is one JSON object.
Run: `.venv/bin/python bench/pages.py [--requests 30]`.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo.seed import DEMO_PASSWORD  # noqa: E402

VIGIL = str(ROOT / ".venv" / "bin" / "vigil")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
BUDGET_MS = 200.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def _signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    token = TOKEN.search(client.get("/login").text)
    assert token, "the sign-in page has no form token"
    answer = client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, f"sign-in of {username}: {answer.status_code}"
    return client


def _first(client: httpx.Client, path: str, **params: str) -> dict[str, Any] | None:
    items = client.get(f"/api/v1{path}", params=params).json().get("items", [])
    return items[0] if items else None


def _pages(clients: dict[str, httpx.Client]) -> list[tuple[str, str, str]]:
    """(page, user, path) for every page, with the demo's records to open."""
    clinician = clients["clinician1"]
    live = _first(clinician, "/dosing-sessions", status="in_progress")
    participant_id = live["participant_id"] if live else None
    event = _first(clients["coordinator"], "/adverse-events")
    note = next(
        (
            found
            for participant in clients["clinician2"].get("/api/v1/participants").json()["items"]
            if (found := _first(clients["clinician2"], f"/participants/{participant['id']}/notes"))
        ),
        None,
    )
    pages = [
        ("sign-in", "anonymous", "/login"),
        ("overview", "clinician1", "/"),
        ("overview (all sites)", "sponsor", "/"),
        ("participants", "coordinator", "/participants"),
        ("alerts", "clinician1", "/alerts"),
        ("exports", "sponsor", "/exports"),
    ]
    if live:
        pages += [
            ("participant", "clinician1", f"/participants/{participant_id}"),
            ("participant history", "clinician1", f"/history/participants/{participant_id}"),
            ("live dosing session", "clinician1", f"/sessions/{live['id']}"),
            # what the live page fetches again on each alert event and every 10 s
            ("session alerts panel", "clinician1", f"/sessions/{live['id']}/alerts"),
            ("session status panel", "clinician1", f"/sessions/{live['id']}/status"),
            (
                "session readings (API)",
                "clinician1",
                f"/api/v1/dosing-sessions/{live['id']}/vital-readings?limit=500",
            ),
        ]
    if event:
        pages.append(("adverse event", "coordinator", f"/adverse-events/{event['id']}"))
    if note:
        pages.append(("note", "clinician2", f"/notes/{note['id']}"))
    return pages


def _server_times(log: Path) -> dict[str, float]:
    times = {}
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"duration_ms"' in line:
            entry = json.loads(line)
            times[entry.get("request_id") or ""] = float(entry["duration_ms"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    env = os.environ | {
        "VIGIL_DATABASE_URL": args.database_url or f"sqlite:///{scratch}/bench.db",
        "VIGIL_LOG_FORMAT": "json",
        "VIGIL_LOG_LEVEL": "info",
        "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0",
    }
    subprocess.run([VIGIL, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([VIGIL, "demo"], env=env, check=True, capture_output=True)
    log = scratch / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [VIGIL, "serve", "--port", str(args.port)], env=env, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{args.port}"
    clients: dict[str, httpx.Client] = {}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        clients = {
            user: _signed_in(base, user)
            for user in ("clinician1", "clinician2", "coordinator", "sponsor")
        }
        clients["anonymous"] = httpx.Client(base_url=base, timeout=30)
        rows = []
        for number, (name, user, path) in enumerate(_pages(clients)):
            client = clients[user]
            first = client.get(path)
            if first.status_code == 404 and not path.startswith("/api/"):
                rows.append({"page": name, "user": user, "path": path, "absent": True})
                continue
            assert first.status_code == 200, f"{name}: {first.status_code}"
            for _ in range(args.warmup):
                client.get(path)
            round_trips = {}
            for attempt in range(args.requests):
                request_id = f"bench-page-{number}-{attempt}"
                started = time.perf_counter()
                answer = client.get(path, headers={"X-Request-ID": request_id})
                round_trips[request_id] = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, f"{name}: {answer.status_code}"
            rows.append(
                {
                    "page": name,
                    "user": user,
                    "path": path,
                    "round_trips": round_trips,
                    "size": len(first.content),
                }
            )
        time.sleep(0.5)  # the last log lines
        server_times = _server_times(log)
    finally:
        for client in clients.values():
            client.close()
        server.terminate()
        server.wait(timeout=30)

    heading = ("server p50", "p95", "max", "round trip p50", "KiB")
    widths = (10, 7, 7, 15, 6)
    print(
        f"{'page':<24} {'user':<12} "
        + " ".join(f"{h:>{w}}" for h, w in zip(heading, widths, strict=True))
    )
    summary: dict[str, Any] = {"budget_ms": BUDGET_MS, "requests": args.requests, "pages": {}}
    for row in rows:
        if row.get("absent"):
            print(f"{row['page']:<24} {row['user']:<12} {'absent (no such page yet)':>40}")
            summary["pages"][row["page"]] = None
            continue
        server_ms = [server_times[request_id] for request_id in row["round_trips"]]
        p50, p95, worst = statistics.median(server_ms), _percentile(server_ms, 0.95), max(server_ms)
        trip = statistics.median(row["round_trips"].values())
        print(
            f"{row['page']:<24} {row['user']:<12} {p50:>8.1f}ms {p95:>5.1f}ms {worst:>5.1f}ms"
            f" {trip:>13.1f}ms {row['size'] / 1024:>6.1f}"
        )
        summary["pages"][row["page"]] = {
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(worst, 1),
        }
    measured = [page for page in summary["pages"].values() if page]
    summary["slowest_p95_ms"] = max(page["p95_ms"] for page in measured)
    summary["all_under_budget_p95"] = summary["slowest_p95_ms"] < BUDGET_MS
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
