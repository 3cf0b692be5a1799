"""The health probes (app/health.py) and what a request gets when the database cannot serve it,
through a real server on real databases of each backend: migrated, behind, ahead, unmigrated,
unopenable."""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app import db, migrations
from app.db import make_engine
from tests.conftest import BACKENDS
from tests.live_server import live_server

SCRIPTS = ScriptDirectory.from_config(migrations.alembic_config(""))
HEAD = SCRIPTS.get_current_head()
PREVIOUS = SCRIPTS.get_revision(HEAD).down_revision
LOGIN = {"username": "nobody", "password": "not a password of anyone"}


@contextmanager
def serving(database_url: str, **settings: str) -> Iterator[httpx.Client]:
    """A client of a real server on ``database_url``, at the root (the probes live there)."""
    with live_server(database_url, **settings) as base:
        root = base.removesuffix("/api/v1")
        with httpx.Client(base_url=root, timeout=10) as client:
            yield client


def _set_revision(database_url: str, revision: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_a_migrated_database_is_ready(backend: str, fresh_database_url):
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    with serving(url) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "current", "schema_revisions": [HEAD]}
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_a_database_migrated_by_a_newer_release_is_still_ready(backend: str, fresh_database_url):
    """A rolling deploy: the new release migrated the database; the old replicas keep serving."""
    url = fresh_database_url(backend)
    migrations.upgrade(url)
    _set_revision(url, "9999_from_a_newer_release")
    with serving(url) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ahead",
            "schema_revisions": ["9999_from_a_newer_release"],
        }


def test_a_database_behind_the_code_is_not_ready(backend: str, fresh_database_url):
    url = fresh_database_url(backend)
    migrations.upgrade(url, PREVIOUS)
    with serving(url) as client:
        body = _problem(client.get("/readyz"), 503)
        assert f"at {PREVIOUS}, behind this code's {HEAD}" in body["detail"]
        assert "vigil migrate" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_an_unmigrated_database_is_not_ready(backend: str, fresh_database_url):
    url = fresh_database_url(backend)
    with serving(url) as client:
        response = client.get("/readyz")
        body = _problem(response, 503)
        assert body["detail"] == (
            f"the database has no Vigil schema; run `vigil migrate` to bring it to {HEAD}"
        )
        assert response.headers["retry-after"] == "5"
        assert client.get("/healthz").status_code == 200


def test_a_database_error_that_is_not_an_outage_is_still_a_500(backend: str, fresh_database_url):
    """Missing tables are Vigil's fault (or its operator's), not something to retry: 500."""
    with serving(fresh_database_url(backend)) as client:
        body = _problem(client.post("/api/v1/auth/login", json=LOGIN), 500)
        assert body["title"] == "Internal error"


def test_an_sqlite_file_that_cannot_be_opened_answers_503_and_retry_after(tmp_path: Path):
    (tmp_path / "a-folder").mkdir()
    with serving(f"sqlite:///{tmp_path / 'a-folder'}") as client:
        response = client.post("/api/v1/auth/login", json=LOGIN)
        body = _problem(response, 503)
        assert response.headers["retry-after"] == "5"
        assert body["detail"] == (
            "the database is not answering; nothing was recorded; send the request again in 5 s"
        )
        ready = client.get("/readyz")
        assert "the database is not answering" in _problem(ready, 503)["detail"]
        assert ready.headers["retry-after"] == "5"
        assert client.get("/healthz").status_code == 200


def test_the_probes_answer_while_every_transaction_place_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A probe never queues for the database behind the requests (app/db.py): with the one
    place held, a request gets Busy (503, Retry-After) and both probes answer 200."""
    monkeypatch.setattr(db, "SLOT_WAIT_SECONDS", 0.2)
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    migrations.upgrade(url)
    with serving(url, db_concurrency="1") as client, ExitStack() as held:
        held.enter_context(db.transaction_slot())  # the server runs in this process
        busy = client.post("/api/v1/auth/login", json=LOGIN)
        assert _problem(busy, 503)["title"] == "Service busy"
        assert busy.headers["retry-after"] == "5"
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/readyz").status_code == 200
