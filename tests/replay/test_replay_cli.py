"""`vigil rules replay` against a migrated database of each backend: the table, --json, the
ways of naming a version, and the refusals (exit 1 with one line saying why)."""

import json
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from app import migrations
from app.cli import cli
from app.config import get_settings
from app.db import dispose_engines, unit_of_work
from app.models import Alert, AuditRecord
from app.replay.schemas import ReplayReport
from tests.factories.trial import PSILOCYBIN, load_protocol
from tests.replay import builders
from tests.replay.builders import AMENDED_LABEL


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _reset() -> None:
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_database(
    request: pytest.FixtureRequest,
    fresh_database_url: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A migrated database of one backend that the CLI uses (VIGIL_DATABASE_URL)."""
    url = fresh_database_url(request.param)
    migrations.upgrade(url)
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    _reset()
    yield url
    _reset()


def _seed(*, ended: bool = True) -> SimpleNamespace:
    """The world of tests/replay/builders.py, committed; ids and hashes as strings."""
    with unit_of_work(actor="test") as session:
        world = builders.build(session, ended=ended)
        foreign = load_protocol(session, PSILOCYBIN)
        return SimpleNamespace(
            session_id=str(world.dosing_session.id),
            own_id=str(world.own.id),
            amended_id=str(world.amended.id),
            amended_sha256=world.amended.sha256,
            foreign_id=str(foreign.id),
        )


def _rows(output: str, mark: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{mark} ")]


def test_the_table_marks_the_extra_finding(cli_database: str):
    ids = _seed()
    result = run("rules", "replay", ids.session_id, "--protocol-version", ids.amended_id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"target:   mdma-ptsd-phase3 v{AMENDED_LABEL} (sequence 2" in out
    assert "own:      mdma-ptsd-phase3 v1.4 (sequence 1" in out
    [extra] = _rows(out, "+")
    assert "2026-02-02 09:30" in extra and " 60 " in extra
    assert "critical" in extra and "hypertension-grade-3" in extra and "155 mmHg" in extra
    assert _rows(out, "-") == []
    [changed] = _rows(out, "=*")
    assert "2026-02-02 10:30" in changed and "hypertension-grade-3" in changed
    assert len(_rows(out, "=")) > 0
    assert "1 only under the target, 0 only under the session's own" in out.splitlines()[-1]
    with unit_of_work(actor="test") as session:
        assert session.scalars(select(Alert)).all() == []
        [record] = session.scalars(select(AuditRecord).where(AuditRecord.action == "replay"))
        assert record.actor == "cli" and record.entity_id == ids.session_id


@pytest.mark.parametrize("how", ["label", "sha256", "latest"])
def test_the_version_by_label_sha256_prefix_or_latest(cli_database: str, how: str):
    ids = _seed()
    ref = {"label": AMENDED_LABEL, "sha256": ids.amended_sha256[:10], "latest": "latest"}[how]
    result = run("rules", "replay", ids.session_id, "--protocol-version", ref, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["target"]["id"] == ids.amended_id


def test_json_is_the_apis_shape(cli_database: str):
    ids = _seed()
    result = run(
        "rules", "replay", ids.session_id, "--protocol-version", ids.own_id, "--json",
        "--min-severity", "warning",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = ReplayReport.model_validate_json(result.output)
    assert report.same_version and report.min_severity == "warning"
    assert report.comparison.only_target == [] and report.comparison.only_baseline == []
    assert len(report.comparison.both) == report.summary.target_findings > 0
    assert all(f.severity != "info" for f in report.findings)


def test_an_unfinished_session_exits_1(cli_database: str):
    ids = _seed(ended=False)
    result = run("rules", "replay", ids.session_id, "--protocol-version", ids.amended_id)
    assert result.exit_code == 1
    assert "end the session first" in result.output


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (str(uuid.uuid4()), "does not exist"),
        ("9.9", "no protocol version '9.9'"),
        ("foreign", "psilocybin-single-session"),
    ],
)
def test_a_bad_version_exits_1(cli_database: str, ref: str, message: str):
    ids = _seed()
    ref = ids.foreign_id if ref == "foreign" else ref
    result = run("rules", "replay", ids.session_id, "--protocol-version", ref)
    assert result.exit_code == 1
    assert message in result.output


def test_an_unknown_session_exits_1(cli_database: str):
    result = run("rules", "replay", str(uuid.uuid4()), "--protocol-version", "latest")
    assert result.exit_code == 1
    assert "dosing session" in result.output and "does not exist" in result.output
