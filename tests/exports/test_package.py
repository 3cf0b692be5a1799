"""A study's SDTM package on disk, on both databases: every file listed in the manifest with
its rows and SHA-256, what was left out counted, and the package export audited."""

import hashlib
import json
from contextlib import nullcontext

from sqlalchemy import select

from app.exports.sdtm.metadata import DATASETS
from app.exports.sdtm.package import record_package_export, write_package
from app.models import AuditRecord
from app.vitals import service as vitals


def test_the_manifest_lists_every_file_with_its_rows_and_hash(db, two_sites, tmp_path):
    vitals.enter_in_error(db, two_sites.b.reading, "Recorded against the wrong participant")
    study = record_package_export(db, "MAPP-T")
    db.commit()  # as `vigil export` does before it writes a file
    manifest = write_package(lambda: nullcontext(db), study, tmp_path)
    names = {entry["file"] for entry in manifest["files"]}
    assert names == {
        f"{d.lower()}.{f}" for d in DATASETS for f in ("csv", "json", "ndjson", "xpt")
    } | {"define.xml"}
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    for entry in manifest["files"]:
        content = (tmp_path / entry["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        if entry["file"].endswith(".json"):
            assert json.loads(content)["records"] == entry["rows"]
    vs_rows = {entry["rows"] for entry in manifest["files"] if entry["file"].startswith("vs.")}
    assert vs_rows == {3}  # site S01's reading: SYSBP, DIABP, PULSE; S02's is left out
    assert manifest["datasets"]["VS"]["entered_in_error"] == 1
    gaps = manifest["conformance_gaps"]
    assert gaps["uncoded_adverse_events"] == 2
    events = (two_sites.a.adverse_event, two_sites.b.adverse_event)
    assert sorted(gaps["uncoded_adverse_event_aespids"]) == sorted(str(e.id) for e in events)
    assert gaps["trial_summary_parameters_not_in_protocol"] == []  # the trial section is whole
    (event,) = db.scalars(select(AuditRecord).where(AuditRecord.action == "export_sdtm"))
    assert event.after["format"] == "package" and event.after["unmasked_fields"] == []
