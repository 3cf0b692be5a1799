"""A commit that fails answers an error, never a 2xx, and stores nothing. Through a real server:
a listener makes the commit of one marked request fail, as a full disk or a lost connection
would at that moment."""

import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from app import migrations
from app.clock import utcnow
from tests.conftest import BACKENDS
from tests.durability.world import Trial, seed_trial
from tests.live_server import live_server

DOOMED = "commit-fails-here"


def _fail_marked_commits(session: Session) -> None:
    if session.info.get("request_id") == DOOMED and not session.in_nested_transaction():
        raise RuntimeError("the disk is full")


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, fresh_database_url) -> Iterator[tuple[str, Trial]]:
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    trial = seed_trial(url)
    event.listen(Session, "before_commit", _fail_marked_commits)
    try:
        with live_server(url) as base:
            yield base, trial
    finally:
        event.remove(Session, "before_commit", _fail_marked_commits)


def test_a_reading_whose_commit_fails_is_refused_and_not_stored(served: tuple[str, Trial]):
    base, trial = served
    reading = {
        "id": str(uuid.uuid4()),
        "measured_at": (utcnow() - timedelta(minutes=5)).isoformat(),
        "observations": [{"code": "PULSE", "value": 80, "unit": "beats/min"}],
    }
    url = f"{base}/dosing-sessions/{trial.dosing_session_id}/vital-readings"
    device = {"Authorization": f"Bearer {trial.device_token}"}
    refused = httpx.post(url, json=reading, headers={**device, "X-Request-ID": DOOMED})
    assert refused.status_code == 500, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "nothing was saved" in refused.json()["detail"]

    login = httpx.post(
        f"{base}/auth/login", json={"username": trial.clinician, "password": trial.password}
    )
    clinician = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert httpx.get(f"{base}/vital-readings/{reading['id']}", headers=clinician).status_code == 404
    # the same reading sent again (as the tablet does after an error) is stored
    assert httpx.post(url, json=reading, headers=device).status_code == 201
    assert httpx.get(f"{base}/vital-readings/{reading['id']}", headers=clinician).status_code == 200
