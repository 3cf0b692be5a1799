"""`vigil export` as a sponsor's data manager runs it on a seeded study, on both databases."""

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

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
