"""A whole study's SDTM package in a directory: every dataset in every format, define.xml, and a
``manifest.json`` listing each file with its row count and SHA-256, what was left out (readings
and records entered in error) and the conformance gaps (uncoded AEs, with their AESPIDs).
Blinded: arms are masked. ``vigil export`` writes it (app/cli/export.py)."""

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.exports.sdtm import service, xpt
from app.exports.sdtm.builders import BUILDERS
from app.exports.sdtm.define import define_xml
from app.exports.sdtm.design_rows import NOT_IN_PROTOCOL
from app.exports.sdtm.metadata import DATASETS
from app.exports.sdtm.rows import ExportCounts
from app.exports.sdtm.service import FileFormat, Readers
from app.models import Study

MANIFEST = "manifest.json"
DEFINE = "define.xml"
TEXT_FORMATS = (FileFormat.CSV, FileFormat.JSON, FileFormat.NDJSON)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    with path.open("wb") as file:
        for chunk in chunks:
            file.write(chunk)


def record_package_export(session: Session, study_code: str) -> Study:
    """The audit event of the package (the session's actor pulled every dataset, masked)."""
    study = service.study_by_code(session, study_code)
    service.audit_export(session, study, ",".join(DATASETS), "package", unblinded=False)
    return study


def write_package(
    readers: Readers,
    study: Study,
    out: Path,
    progress: Callable[[str], None] = lambda _name: None,
) -> dict[str, Any]:
    """Write every dataset of ``study`` in every format into ``out``; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    datasets: dict[str, dict[str, int]] = {}
    for dataset in DATASETS.values():
        for file_format in TEXT_FORMATS:
            path = out / f"{dataset.name.lower()}.{file_format.value}"
            counts = ExportCounts()
            _write(path, service.text_chunks(readers, study, dataset, file_format, False, counts))
            files.append({"file": path.name, "rows": counts.rows, "sha256": _sha256(path)})
            progress(path.name)
        with readers() as session:
            rows = BUILDERS[dataset.name](session, study, False, ExportCounts())
            for part in xpt.write_parts(dataset, rows, out):
                files.append(
                    {"file": part.path.name, "rows": part.rows, "sha256": _sha256(part.path)}
                )
                progress(part.path.name)
        datasets[dataset.name] = asdict(counts)  # the same in every format
    with readers() as session:
        versions = service.meddra_versions(session, study)
    (out / DEFINE).write_bytes(define_xml(study.code, versions))
    files.append({"file": DEFINE, "rows": None, "sha256": _sha256(out / DEFINE)})  # metadata
    progress(DEFINE)
    manifest = {
        "study": study.code,
        "standard": "SDTMIG 3.4",
        "created_at": datetime.now(UTC).isoformat(),
        "arms": "masked",
        "datasets": datasets,
        "conformance_gaps": {
            # AEDECOD is required: each uncoded AE, by AESPID, for the coder (docs/exports.md)
            "uncoded_adverse_events": datasets["AE"]["uncoded"],
            "uncoded_adverse_event_aespids": datasets["AE"]["uncoded_aespids"],
            "trial_summary_parameters_not_in_protocol": list(NOT_IN_PROTOCOL),
        },
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
