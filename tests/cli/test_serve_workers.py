"""`vigil serve --workers 2` through real processes: two workers answer, exactly one of them
leads the scheduler (elected through the database: an advisory lock on PostgreSQL, a file lock
beside the SQLite database), and when the leader is killed (SIGKILL) the other takes over within
15 s."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app import migrations
from app.config import ROOT
from tests.conftest import BACKENDS
from tests.server_process import free_port


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_serve_and_one_leads_the_scheduler(fresh_database_url, backend, tmp_path):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_ENVIRONMENT": "test",
        "VIGIL_DATABASE_URL": url,
        "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0.5",
        "VIGIL_LOG_LEVEL": "info",
    }
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            assert server.poll() is None, log.read_text()[-2000:]
            workers = {
                int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log.read_text())
            }
            time.sleep(0.2)
        assert len(workers) == 2, log.read_text()[-2000:]
        assert workers <= _children(server.pid)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        time.sleep(3)  # several scheduler intervals: a second leader would have said so
        leaders = re.findall(r"scheduler: leading \(pid (\d+)\)", log.read_text())
        assert len(leaders) == 1, log.read_text()[-3000:]
        leader = int(leaders[0])
        assert leader in workers
        os.kill(leader, signal.SIGKILL)
        killed_at = time.monotonic()
        while time.monotonic() < killed_at + 15:
            leaders = re.findall(r"scheduler: leading \(pid (\d+)\)", log.read_text())
            if len(leaders) > 1:
                break
            time.sleep(0.2)
        assert len(leaders) == 2, log.read_text()[-3000:]
        assert int(leaders[1]) != leader
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
