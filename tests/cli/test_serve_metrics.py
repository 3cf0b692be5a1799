"""`vigil serve --workers 2`: /metrics, whichever worker answers it, counts the requests both
workers served (prometheus-client's multiprocess mode, in a directory `vigil serve` makes and
removes)."""

import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from app import migrations
from tests.conftest import BACKENDS
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow
HEALTHZ = 'vigil_http_requests_total{method="GET",route="/healthz",status="2xx"}'


def _healthz_served(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "vigil_http_requests_total" and sample.labels == {
                "method": "GET",
                "route": "/healthz",
                "status": "2xx",
            }:
                return sample.value
    return 0.0


def _served_by_each_worker(directory: Path) -> dict[str, float]:
    """GET /healthz answered, by the pid of the worker that answered (its own counter file)."""
    served = {}
    for path in directory.glob("counter_*.db"):
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "vigil_http_requests_total" and labels.get("route") == "/healthz":
                served[path.stem.removeprefix("counter_")] = value
    return served


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics_sum_the_requests_of_both_workers(fresh_database_url, backend, tmp_path):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    server = ServerProcess(url, tmp_path / "serve.log", workers=2)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server.env["TMPDIR"] = str(temporary)  # where `vigil serve` makes its metrics directory
    server.start(timeout=60)
    try:
        (directory,) = temporary.glob("vigil-metrics-*")
        sent = 0
        deadline = time.monotonic() + 20
        # a new connection each time, so either worker may accept it, until both have answered
        while sent < 20 or len(_served_by_each_worker(directory)) < 2:
            assert time.monotonic() < deadline, f"one worker answered all {sent} requests"
            assert httpx.get(f"{server.root}/healthz").status_code == 200
            sent += 1
        by_worker = _served_by_each_worker(directory)
        assert len(by_worker) == 2 and sum(by_worker.values()) == sent
        for _ in range(6):  # each scrape on a new connection: answered by either worker
            scraped = httpx.get(f"{server.root}/metrics")
            assert scraped.status_code == 200
            assert _healthz_served(scraped.text) == sent, HEALTHZ
    finally:
        server.stop()
    assert not list(temporary.glob("vigil-metrics-*")), "the metrics directory was left behind"
