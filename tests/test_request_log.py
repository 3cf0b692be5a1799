"""The log: one line per request with its method, path, status, duration and request id, and no
personal data in any line of any logger, whatever a request carries in its body, query string
or headers, in both formats (text and VIGIL_LOG_FORMAT=json)."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import migrations
from app.config import ROOT, Settings
from app.logs import TEXT_FORMAT, json_formatter
from app.notes import service as notes_service
from app.notes.schemas import NoteCreate
from app.security import RedactSecrets
from tests.server_process import free_port

NAME = "Josephine Quayle"  # a participant's name, as a careless client might send it
PERSONAL = ("Josephine", "Quayle", "josephine.quayle", "J.Q.")
FORMATTERS = {"text": logging.Formatter(TEXT_FORMAT), "json": json_formatter()}


CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own HTTP client, not the server


def _logged(caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    """Every record of every logger of the server as each format writes it (secrets redacted,
    as the server's handler does)."""
    redact = RedactSecrets()
    records = [r for r in caplog.records if r.name.partition(".")[0] not in CLIENT_LOGGERS]
    for record in records:
        redact.filter(record)
    return {
        name: [formatter.format(record) for record in records]
        for name, formatter in FORMATTERS.items()
    }


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "vigil.http" and hasattr(r, "status")]


def test_each_request_logs_one_line_and_no_personal_data(
    client: TestClient,
    anonymous_client: TestClient,
    two_sites: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    token = client.headers["authorization"].removeprefix("Bearer ")
    site, participant = two_sites.a.site, two_sites.a.participant
    answers = [
        client.post(  # a name where a pseudonymous id belongs, and initials the API does not take
            f"/api/v1/studies/{two_sites.study.id}/participants",
            json={
                "site_id": str(site.id),
                "subject_id": NAME,
                "initials": "J.Q.",
                "sex": "F",
                "age_years": 33,
                "consented_on": "2026-01-02",
            },
            headers={"X-Request-ID": "tablet-7.req-9"},
        ),
        client.get(  # a search in the query string, a name in a header
            f"/api/v1/participants/{participant.id}/notes",
            params={"search": NAME, "by": "josephine.quayle"},
            headers={"X-Caller-Note": f"about {NAME}"},
        ),
        client.post(  # a note's text
            f"/api/v1/participants/{participant.id}/notes",
            json={
                "text": f"{NAME} spoke of the accident for the first time.",
                "written_at": "2026-02-02T17:00:00Z",
                "author_id": str(two_sites.a.therapist.id),
            },
        ),
        anonymous_client.post(  # a failed sign-in, its username and password
            "/api/v1/auth/login",
            json={"username": "josephine.quayle", "password": "Quayle's password"},
        ),
        client.get(f"/api/v1/people/{NAME}"),  # a name in a path that no route has
    ]
    assert [a.status_code for a in answers] == [422, 200, 201, 401, 404], answers[-1].text

    logged = _logged(caplog)
    for name, lines in logged.items():
        for line in lines:
            for value in (*PERSONAL, token):
                assert value not in line, f"{value!r} in the {name} log: {line}"

    lines = _request_lines(caplog)
    assert [(r.method, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("POST", 422),
        ("GET", 200),
        ("POST", 201),
        ("POST", 401),
        ("GET", 404),
    ]
    first = json.loads(FORMATTERS["json"].format(lines[0]))
    assert first["path"] == "/api/v1/studies/{study_id}/participants"  # the route's template
    assert lines[-1].path == "-"  # type: ignore[attr-defined]
    assert first["request_id"] == "tablet-7.req-9"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["level"] == "INFO" and first["logger"] == "vigil.http"
    search = json.loads(FORMATTERS["json"].format(lines[1]))
    assert search["path"] == "/api/v1/participants/{participant_id}/notes"  # no query string
    assert search["request_id"] == answers[1].headers["x-request-id"]
    plain = FORMATTERS["text"].format(lines[0])
    assert f"POST {first['path']} 422 " in plain and "ms (request id tablet-7.req-9)" in plain


def test_a_database_error_is_logged_with_the_request_id_and_without_the_values_sent(
    client: TestClient,
    db: Session,
    two_sites: SimpleNamespace,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    """A bug in a query fails the request (500). Its log line names the request id the answer
    tells the user to report, and neither the query's parameters nor the driver's message,
    which on PostgreSQL quotes the value (invalid input syntax for type integer: "...")."""
    faulty, shown = {  # the statement, and how the log shows it
        "sqlite": ("INSERT INTO no_such_table (text) VALUES (:text)", "INSERT INTO no_such_table"),
        "postgresql": ("SELECT CAST(:text AS integer)", "SELECT CAST("),
    }[db.get_bind().dialect.name]

    def buggy_create(session: Session, participant: object, data: NoteCreate) -> None:
        session.execute(text(faulty), {"text": data.text})

    monkeypatch.setattr(notes_service, "create", buggy_create)
    caplog.set_level(logging.DEBUG)
    failed = client.post(
        f"/api/v1/participants/{two_sites.a.participant.id}/notes",
        json={
            "text": f"{NAME} spoke of the accident for the first time.",
            "written_at": "2026-02-02T17:00:00Z",
            "author_id": str(two_sites.a.therapist.id),
        },
        headers={"X-Request-ID": "tablet-7.req-10"},
    )
    assert failed.status_code == 500
    assert failed.json()["request_id"] == "tablet-7.req-10"
    for name, lines in _logged(caplog).items():
        for line in lines:
            for value in PERSONAL:
                assert value not in line, f"{value!r} in the {name} log: {line}"
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "request id tablet-7.req-10" in error.getMessage()
    assert f"statement: {shown}" in error.getMessage()  # to find the bug
    [line] = _request_lines(caplog)
    assert (line.status, line.request_id) == (500, "tablet-7.req-10")  # type: ignore[attr-defined]


@pytest.mark.slow
def test_vigil_serve_writes_json_lines_and_no_access_log_of_its_own(tmp_path: Path):
    """`vigil serve` with VIGIL_LOG_FORMAT=json: every line on stderr is one JSON object,
    uvicorn's included; a request is logged once, by Vigil, without its query string (uvicorn's
    access log, which shows it, is off)."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    migrations.upgrade(url)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_ENVIRONMENT": "test",
        "VIGIL_DATABASE_URL": url,
        "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0",
        "VIGIL_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "vigil serve did not answer within 30 s"
                time.sleep(0.2)
        searched = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/participants",
            params={"search": NAME},
            headers={"X-Request-ID": "serve-1"},
        )
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert searched.status_code == 401
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # its own, as JSON too
    assert [
        (line["method"], line["path"], line["status"])
        for line in lines
        if line.get("request_id") == "serve-1" or "participants" in line["message"]
    ] == [("GET", "/api/v1/participants", 401)]
    for value in PERSONAL:
        assert value not in stderr


def test_an_unknown_log_format_is_refused_naming_the_setting():
    with pytest.raises(ValidationError, match="VIGIL_LOG_FORMAT is text or json, not 'yaml'"):
        Settings(log_format="yaml")
