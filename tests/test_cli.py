"""The `vigil` command, driven through Typer's CliRunner (and one real `vigil serve` process)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner, Result

import app.db
from app.auth.principal import site_ids_of
from app.cli import cli
from app.config import ROOT, get_settings
from app.db import dispose_engines, make_engine, unit_of_work
from app.models import AuditRecord, ProtocolVersion, User
from app.protocols.loader import load_protocol_file
from tests.factories.trial import make_site, make_study

SHIPPED = sorted((ROOT / "protocols").glob("*.yaml"))
PASSWORD = "correct horse battery staple"

# A small valid protocol: a broken copy points at known paths and lines.
MINIMAL = """\
protocol:
  id: cli-test
  version: "1.0"
  title: A one-session protocol for the CLI tests
  drug: {name: MDMA, unit: mg, route: oral}
  sources: [tests/test_cli.py]
arms:
  - {code: A, label: Active, blinded_label: Arm 1}
visits:
  - {code: EXP1, name: Experimental session 1, kind: experimental, day: 7,
     window: {before: 2, after: 2}, duration_minutes: 480}
  - {code: OUT, name: Primary outcome, kind: outcome, day: 60,
     window: {before: 7, after: 7}, duration_minutes: 90, primary_outcome: true}
dosing:
  sessions:
    - {visit: EXP1, initial_mg: [80], supplemental: null, max_total_mg: 80}
vitals_schedule:
  baseline: {measures: [SYSBP, PULSE], within_minutes_before_dose: 60}
  intervals:
    - {measures: [SYSBP, PULSE], from_minute: 0, to_minute: 480, every_minutes: 30,
       grace_minutes: 10}
alerting:
  acknowledge_within_minutes: {critical: 5, warning: 30}
  escalation: [site_clinician, medical_monitor]
  sae_report_within_hours: 24
rules:
  - id: sbp-high
    kind: threshold
    severity: critical
    title: Systolic blood pressure at or above 160 mmHg
    source: CTCAE v5.0 hypertension grade 3
    when:
      any:
        - {measure: SYSBP, op: ">=", value: 160, unit: mmHg}
"""


def protocol_id(path: Path) -> str:
    return load_protocol_file(path).protocol.protocol.id


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _clear_caches() -> None:
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Point the CLI (settings, engines) at a database of the test's choosing."""
    engines: list[Engine] = []

    def tracked_engine(*args: Any, **kwargs: Any) -> Engine:
        engine = make_engine(*args, **kwargs)
        engines.append(engine)
        return engine

    monkeypatch.setattr(app.db, "make_engine", tracked_engine)

    def use(url: str) -> str:
        monkeypatch.setenv("VIGIL_DATABASE_URL", url)
        _clear_caches()
        return url

    yield use
    for engine in engines:
        engine.dispose()
    _clear_caches()


@pytest.fixture
def sqlite_url(use_database, tmp_path: Path) -> str:
    return use_database(f"sqlite:///{tmp_path / 'cli.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, use_database, fresh_database_url) -> str:
    url = use_database(fresh_database_url(request.param))
    result = run("migrate")
    assert result.exit_code == 0, result.output
    return url


# --- help ---------------------------------------------------------------------------------------


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():  # a group's subcommands
        paths += _command_paths(sub, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(cli))


def test_every_command_is_reachable():
    expected = {
        ("serve",),
        ("migrate",),
        ("protocol", "validate"),
        ("protocol", "load"),
        ("user", "create"),
        ("demo",),
        ("tablet",),
    }
    assert expected <= set(COMMAND_PATHS)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "vigil")
def test_help(path: tuple[str, ...]):
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: vigil" in result.output


def test_no_arguments_shows_the_commands():
    result = run()
    assert "serve" in result.output
    assert "protocol" in result.output


# --- protocol validate --------------------------------------------------------------------------


def test_validate_the_shipped_protocols():
    assert len(SHIPPED) >= 2, "protocols/ should ship the MDMA and psilocybin protocols"
    result = run("protocol", "validate", *map(str, SHIPPED))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(SHIPPED)
    for path, line in zip(SHIPPED, lines, strict=True):
        loaded = load_protocol_file(path)
        info = loaded.protocol.protocol
        assert line == f"ok {path} {info.id} v{info.version} sha256 {loaded.sha256}"


def test_validate_a_broken_file_prints_every_issue_and_exits_1(tmp_path: Path):
    text = MINIMAL.replace("severity: critical", "severity: urgent").replace(
        "unit: mmHg}", "unit: kPa}"
    )
    broken = write(tmp_path, "broken.yaml", text)
    good = write(tmp_path, "good.yaml", MINIMAL)

    result = run("protocol", "validate", str(broken), str(good))

    assert result.exit_code == 1
    assert result.stdout.startswith(f"ok {good} cli-test v1.0 sha256 ")
    severity_line = text.splitlines().index("    severity: urgent") + 1
    assert f"{broken}:{severity_line}: rules[0].severity: input should be" in result.stderr
    assert "rules[0].when.any[0].unit: unit mismatch" in result.stderr
    assert "'kPa'" in result.stderr
    assert "1 of 2 protocol file(s) invalid" in result.stderr


def test_validate_yaml_syntax_error(tmp_path: Path):
    broken = write(tmp_path, "syntax.yaml", MINIMAL.replace("  id: cli-test", "  id: [cli-test"))
    result = run("protocol", "validate", str(broken))
    assert result.exit_code == 1
    assert f"{broken}:" in result.stderr
    assert "YAML syntax error" in result.stderr


def test_validate_a_missing_file(tmp_path: Path):
    result = run("protocol", "validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "nope.yaml: <document>: no such protocol file" in result.stderr


def test_validate_needs_no_database(use_database, tmp_path: Path):
    use_database("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    good = write(tmp_path, "good.yaml", MINIMAL)
    assert run("protocol", "validate", str(good)).exit_code == 0


# --- migrate and protocol load ------------------------------------------------------------------


def test_migrate_check_twice(migrated_url: str):
    for _ in range(2):
        result = run("migrate", "--check")
        assert result.exit_code == 0, result.output
        assert "check: the models match the migrations" in result.stdout


def test_load_the_shipped_protocols_twice(migrated_url: str):
    first = run("protocol", "load")
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert len(lines) == len(SHIPPED)
    for path, line in zip(SHIPPED, lines, strict=True):
        assert line.startswith(f"loaded {protocol_id(path)} v"), line
        assert " sequence 1 sha256 " in line
        assert line.endswith(f" from {path}")

    second = run("protocol", "load")
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert len(lines) == len(SHIPPED)
    for path, line in zip(SHIPPED, lines, strict=True):
        assert line.startswith(f"unchanged {protocol_id(path)} v"), line
        assert line.endswith(" (already loaded)")

    with unit_of_work(actor="test") as session:
        assert session.scalar(select(func.count()).select_from(ProtocolVersion)) == len(SHIPPED)
        audited = select(func.count()).where(AuditRecord.entity_type == "protocol_versions")
        assert session.scalar(audited) == len(SHIPPED)


def test_an_amendment_is_a_new_sequence(migrated_url: str, tmp_path: Path):
    original = write(tmp_path, "cli-test.yaml", MINIMAL)
    assert "loaded cli-test v1.0 sequence 1" in run("protocol", "load", str(original)).stdout

    amended = write(tmp_path, "amended.yaml", MINIMAL.replace('version: "1.0"', 'version: "2.0"'))
    result = run("protocol", "load", str(original), str(amended))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("unchanged cli-test v1.0 sequence 1 ")
    assert result.stdout.splitlines()[1].startswith("loaded cli-test v2.0 sequence 2 ")


def test_other_content_under_a_loaded_label_is_refused(migrated_url: str, tmp_path: Path):
    original = write(tmp_path, "cli-test.yaml", MINIMAL)
    assert run("protocol", "load", str(original)).exit_code == 0
    changed = write(tmp_path, "changed.yaml", MINIMAL.replace("title: A", "title: An amended", 1))

    result = run("protocol", "load", str(changed))

    assert result.exit_code == 1
    assert "cli-test version '1.0' is already loaded with other content" in result.stderr
    assert "An amendment needs a new version label" in result.stderr
    with unit_of_work(actor="test") as session:
        assert session.scalar(select(func.count()).select_from(ProtocolVersion)) == 1


def test_load_stores_nothing_if_any_file_is_invalid(migrated_url: str, tmp_path: Path):
    good = write(tmp_path, "good.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", MINIMAL.replace("kind: threshold", "kind: thresold"))

    result = run("protocol", "load", "--dir", str(tmp_path))

    assert result.exit_code == 1
    assert f"{bad}:" in result.stderr
    assert "unknown kind 'thresold'" in result.stderr
    assert "nothing loaded: 1 of 2 protocol file(s) invalid" in result.stderr
    assert result.stdout == ""
    assert good.exists()
    with unit_of_work(actor="test") as session:
        assert session.scalar(select(func.count()).select_from(ProtocolVersion)) == 0


def test_load_from_an_empty_directory_fails(migrated_url: str, tmp_path: Path):
    result = run("protocol", "load", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "no protocol files" in result.stderr


def test_load_into_an_unmigrated_database_says_to_migrate(sqlite_url: str, tmp_path: Path):
    good = write(tmp_path, "good.yaml", MINIMAL)
    result = run("protocol", "load", str(good))
    assert result.exit_code == 1
    assert "vigil migrate" in result.stderr


# --- user create --------------------------------------------------------------------------------


@pytest.fixture
def site_code(migrated_url: str) -> str:
    with unit_of_work(actor="test") as session:
        study = make_study(session, code="CLI-1")
        make_site(session, study, code="S01")
    return "S01"


def test_user_create_with_password_on_stdin(site_code: str):
    result = run(
        "user", "create", "alice", "--name", "Alice Smith, MD", "--role", "clinician",
        "--site", site_code, "--password-stdin",
        input=f"{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("created user alice (clinician) at sites S01 id ")

    with unit_of_work(actor="test") as session:
        user = session.scalar(select(User).where(User.username == "alice"))
        assert user is not None
        assert user.display_name == "Alice Smith, MD"
        assert PASSWORD not in user.password_hash
        assert len(site_ids_of(session, user.id)) == 1
        audit = session.scalar(
            select(AuditRecord).where(
                AuditRecord.entity_type == "users", AuditRecord.entity_id == str(user.id)
            )
        )
        assert audit is not None
        assert audit.actor == "cli"


def test_user_create_prompts_twice_for_the_password(migrated_url: str):
    result = run(
        "user", "create", "mm", "--name", "Med Monitor", "--role", "MEDICAL_MONITOR",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "created user mm (medical_monitor)" in result.stdout
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--site", "S99"], PASSWORD, "no site 'S99'"),
        (["--site", "S01", "--study", "OTHER"], PASSWORD, "no site 'S01' in study OTHER"),
        (["--study", "CLI-1"], PASSWORD, "give --site too"),
        ([], "too short", "at least 12 characters"),
        ([], "", "no password on stdin"),
    ],
)
def test_user_create_refusals(site_code: str, args: list[str], stdin: str, message: str):
    result = run(
        "user", "create", "bob", "--name", "Bob", "--role", "therapist", *args,
        "--password-stdin",
        input=f"{stdin}\n",
    )  # fmt: skip
    assert result.exit_code == 1
    assert message in result.stderr
    with unit_of_work(actor="test") as session:
        assert session.scalar(select(User).where(User.username == "bob")) is None


def test_user_create_refuses_a_taken_username(migrated_url: str):
    args = ["user", "create", "carol", "--name", "Carol", "--role", "admin", "--password-stdin"]
    assert run(*args, input=f"{PASSWORD}\n").exit_code == 0
    again = run(*args, input=f"{PASSWORD}\n")
    assert again.exit_code == 1
    assert "username 'carol' is taken" in again.stderr


# --- demo ---------------------------------------------------------------------------------------


def test_demo_reset_refuses_a_database_that_is_not_sqlite(use_database):
    use_database("postgresql+psycopg://postgres@127.0.0.1:5432/not_touched")
    result = run("demo", "--reset")
    assert result.exit_code == 1
    assert "refusing" in result.stderr


# --- serve --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_on_the_given_port(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "VIGIL_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    migrate = [sys.executable, "-m", "app.cli", "migrate"]
    subprocess.run(migrate, env=env, cwd=ROOT, check=True, capture_output=True)
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--demo-tablet"]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "vigil serve did not answer within 30 s"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal
    assert process.returncode in {0, -signal.SIGTERM}, stderr
    assert "Application shutdown complete" in stderr
