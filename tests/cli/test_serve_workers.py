"""`vigil serve --workers 2` through real processes: two workers answer, exactly one of them
leads the scheduler (elected through the database: an advisory lock on PostgreSQL, a file lock
beside the SQLite database), and when the leader is killed (SIGKILL) another takes over within
15 s."""

import os
import re
import signal
import time

import pytest

from app import migrations
from tests.conftest import BACKENDS
from tests.server_process import ServerProcess

LEADING = re.compile(r"scheduler: leading \(pid (\d+)\)")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_serve_and_one_leads_the_scheduler(fresh_database_url, backend, tmp_path):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    server = ServerProcess(
        url, tmp_path / "serve.log", workers=2, scheduler_interval_seconds="0.5", log_level="info"
    )
    server.start(timeout=60)
    try:
        log = server.log_path.read_text
        deadline = time.monotonic() + 30
        while len(set(re.findall(r"Started server process \[(\d+)\]", log()))) < 2:
            assert time.monotonic() < deadline, log()[-2000:]
            time.sleep(0.2)
        workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log())}
        time.sleep(3)  # several scheduler intervals: a second leader would have said so
        leaders = [int(pid) for pid in LEADING.findall(log())]
        assert len(leaders) == 1, log()[-3000:]
        assert leaders[0] in workers
        os.kill(leaders[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while len(LEADING.findall(log())) < 2:
            assert time.monotonic() < deadline, f"no new leader within 15 s: {log()[-3000:]}"
            time.sleep(0.2)
        assert int(LEADING.findall(log())[1]) != leaders[0]
    finally:
        server.stop()
