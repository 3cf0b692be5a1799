"""`vigil export` as a sponsor's data manager runs it on a seeded study, on both databases."""

import hashlib
import io
import json
from pathlib import Path
from zipfile import ZipFile

from rich.console import Console
from sqlalchemy import select

from app.cli.export_progress import package_progress
from app.db import unit_of_work
from app.models import AuditRecord
from tests.test_cli import run


def test_vigil_export_writes_the_package_and_its_manifest(migrated_url: str, tmp_path: Path):
    assert run("demo").exit_code == 0
    out = tmp_path / "package"

    result = run("export", "--study", "DEMO-MAPP", "--out", str(out))

    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"] == "DEMO-MAPP" and manifest["arms"] == "masked"
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {e["file"] for e in manifest["files"]} >= {"dm.csv", "vs.ndjson", "ae.xpt"}
    with unit_of_work(actor="test") as session:
        (event,) = session.scalars(select(AuditRecord).where(AuditRecord.action == "export_sdtm"))
        assert (event.actor, event.after["format"]) == ("cli", "package")


def test_an_unknown_study_is_refused_naming_it(migrated_url: str, tmp_path: Path):
    result = run("export", "--study", "NOPE", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "no study has the code 'NOPE'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_out_ending_in_zip_writes_the_package_into_one_zip(migrated_url: str, tmp_path: Path):
    assert run("demo").exit_code == 0
    target = tmp_path / "sponsor" / "DEMO-MAPP.zip"

    result = run("export", "--study", "DEMO-MAPP", "--out", str(target))

    assert result.exit_code == 0, result.output
    assert list(target.parent.iterdir()) == [target]  # nothing beside the ZIP, no partial file
    with ZipFile(target) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = archive.namelist()
        assert sorted(names) == sorted([e["file"] for e in manifest["files"]] + ["manifest.json"])
        for entry in manifest["files"]:
            content = archive.read(entry["file"])
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    vs_csv = next(e for e in manifest["files"] if e["file"] == "vs.csv")
    assert vs_csv["rows"] > 0 and manifest["arms"] == "masked"


def test_off_a_terminal_the_export_prints_no_progress(migrated_url: str, tmp_path: Path):
    assert run("demo").exit_code == 0
    result = run("export", "--study", "DEMO-MAPP", "--out", str(tmp_path / "p"))
    assert result.exit_code == 0
    assert result.output.strip().splitlines() == [
        f"{len(list((tmp_path / 'p').iterdir())) - 1} files and manifest.json in {tmp_path / 'p'}"
    ]


def test_on_a_terminal_the_bar_shows_files_and_rows_of_the_totals():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with package_progress(console, files=3, rows=1500) as progress:
        progress("vs.csv", 1000, False)
        progress("vs.csv", 0, True)
        progress("vs.xpt", 500, True)
    last = screen.getvalue().rsplit("\r", 1)[-1]
    assert "2/3 files" in last and "1,500/1,500 rows" in last


def test_vigil_reports_writes_the_summary_and_each_started_sessions_report(
    migrated_url: str, tmp_path: Path
):
    assert run("demo").exit_code == 0

    result = run("reports", "--study", "DEMO-MAPP", "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "reports").iterdir())
    assert "DEMO-MAPP-summary.pdf" in written and len(written) > 1
    assert all((tmp_path / "reports" / name).read_bytes()[:5] == b"%PDF-" for name in written)
    with unit_of_work(actor="test") as session:
        events = session.scalars(select(AuditRecord).where(AuditRecord.action == "export_report"))
        assert [(e.actor, e.after["files"]) for e in events] == [("cli", len(written))]
