"""Unexpected errors: a 500 problem+json answered from inside the app, on a connection that stays
open, through a real server (the in-process client cannot see a dropped connection)."""

import logging
from collections.abc import Iterator

import httpx
import pytest

from app import migrations
from app.auth import login
from tests.conftest import BACKENDS
from tests.live_server import live_server


@pytest.fixture(scope="module", params=BACKENDS)
def base(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[str]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    with live_server(url) as served:
        yield served


def _local_address(response: httpx.Response) -> tuple[str, int]:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_a_500_keeps_the_connection_open_for_the_next_request(base, monkeypatch, caplog):
    def broken_login(*args: object) -> None:
        raise RuntimeError("a bug in sign-in")

    monkeypatch.setattr(login, "login", broken_login)
    with httpx.Client(timeout=10) as client, caplog.at_level(logging.ERROR, "vigil.errors"):
        failed = client.post(
            f"{base}/auth/login",
            json={"username": "casey", "password": "any password at all"},
            headers={"X-Request-ID": "tablet-3.req-41"},
        )
        after = client.get(f"{base}/health")
        first_connection, second_connection = _local_address(failed), _local_address(after)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.headers["x-request-id"] == "tablet-3.req-41"
    assert failed.headers["x-content-type-options"] == "nosniff"
    assert failed.json()["request_id"] == "tablet-3.req-41"
    assert "nothing was saved" in failed.json()["detail"]
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 200
    assert second_connection == first_connection
    [logged] = [r for r in caplog.records if r.name == "vigil.errors"]
    assert "tablet-3.req-41" in logged.getMessage()
    assert logged.exc_info is not None and "a bug in sign-in" in str(logged.exc_info[1])
