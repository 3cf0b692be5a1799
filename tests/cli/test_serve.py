"""`vigil serve` refuses, at once and changing nothing, what would fail later: a port another
server holds (a second `make run`), a database without this code's schema."""

import socket
from collections.abc import Callable
from typing import Any

import pytest
import uvicorn
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from app import migrations
from app.db import make_engine, unit_of_work
from app.models import AccessToken, AuditRecord
from tests.conftest import BACKENDS
from tests.test_cli import run

SCRIPTS = ScriptDirectory.from_config(migrations.alembic_config(""))
HEAD = SCRIPTS.get_current_head()
PREVIOUS = SCRIPTS.get_revision(HEAD).down_revision


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What `vigil serve` asked uvicorn to serve; nothing is served."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    return calls


@pytest.fixture(params=BACKENDS)
def blank_url(
    request: pytest.FixtureRequest, use_database: Callable[[str], str], fresh_database_url: Any
) -> str:
    """An empty database (no migration run) that the CLI uses."""
    return use_database(fresh_database_url(request.param))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _set_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def _counts() -> tuple[int, int]:
    with unit_of_work(actor="test") as session:
        tokens = session.scalar(select(func.count()).select_from(AccessToken))
        audited = session.scalar(select(func.count()).select_from(AuditRecord))
    return tokens or 0, audited or 0


def test_a_taken_port_is_refused_at_once_naming_how_to_choose_another(
    migrated_url: str, served: list[dict[str, Any]]
):
    before = _counts()
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        result = run("serve", "--host", "127.0.0.1", "--port", str(port), "--demo-tablet")

    assert result.exit_code == 1, result.output
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port or VIGIL_PORT" in result.stderr
    assert served == []
    assert _counts() == before  # no token issued or revoked, nothing audited


def test_an_unmigrated_database_is_refused_naming_vigil_migrate(
    blank_url: str, served: list[dict[str, Any]]
):
    result = run("serve", "--host", "127.0.0.1", "--port", str(free_port()))

    assert result.exit_code == 1, result.output
    assert "the database has no Vigil schema; run `vigil migrate`" in result.stderr
    assert served == []


def test_a_database_behind_the_code_is_refused_naming_vigil_migrate(
    blank_url: str, served: list[dict[str, Any]]
):
    migrations.upgrade(blank_url, PREVIOUS)

    result = run("serve", "--host", "127.0.0.1", "--port", str(free_port()))

    assert result.exit_code == 1, result.output
    assert f"at {PREVIOUS}, behind this code's {HEAD}; run `vigil migrate`" in result.stderr
    assert served == []


@pytest.mark.parametrize("revision", [HEAD, "9999_from_a_newer_release"])
def test_a_current_or_newer_schema_is_served(
    blank_url: str, served: list[dict[str, Any]], revision: str
):
    migrations.upgrade(blank_url)
    _set_revision(blank_url, revision)

    port = free_port()
    result = run("serve", "--host", "127.0.0.1", "--port", str(port))

    assert result.exit_code == 0, result.output
    assert [(call["host"], call["port"]) for call in served] == [("127.0.0.1", port)]


def test_workers_are_passed_to_uvicorn_and_refused_with_reload(
    blank_url: str, served: list[dict[str, Any]]
):
    migrations.upgrade(blank_url)
    port = free_port()

    result = run("serve", "--port", str(port), "--workers", "3")
    assert result.exit_code == 0, result.output
    assert [call["workers"] for call in served] == [3]

    refused = run("serve", "--port", str(port), "--workers", "2", "--reload")
    assert refused.exit_code == 1
    assert "--reload serves one process" in refused.output
    assert len(served) == 1
