"""A whole study's SDTM package in a directory or a ZIP file: every dataset in every format,
define.xml, and a ``manifest.json`` listing each file with its row count and SHA-256, what was
left out (readings and records entered in error) and the conformance gaps (uncoded AEs, with
their AESPIDs). Blinded: arms are masked. ``vigil export`` writes it (app/cli/export.py)."""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

from sqlalchemy.orm import Session

from app.exports.sdtm import service, xpt
from app.exports.sdtm.builders import BUILDERS, row_count
from app.exports.sdtm.define import define_xml
from app.exports.sdtm.design_rows import missing_trial_facts
from app.exports.sdtm.metadata import DATASETS
from app.exports.sdtm.rows import ExportCounts
from app.exports.sdtm.service import FileFormat, Readers
from app.models import Study

MANIFEST = "manifest.json"
DEFINE = "define.xml"
TEXT_FORMATS = (FileFormat.CSV, FileFormat.JSON, FileFormat.NDJSON)


Progress = Callable[[str, int, bool], None]
"""Told of each step: (file name, rows just written into it, whether the file is complete)."""


def _quiet(_name: str, _rows: int, _done: bool) -> None:
    pass


class _Directory:
    """Package files written into a directory, each hashed as it is written."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.parts = out  # XPT parts are written here directly

    def text(self, name: str, chunks: Iterable[bytes]) -> str:
        digest = hashlib.sha256()
        with (self.parts / name).open("wb") as file:
            for chunk in chunks:
                digest.update(chunk)
                file.write(chunk)
        return digest.hexdigest()

    def add(self, path: Path) -> str:
        return _sha256(path)

    def manifest(self, content: str) -> None:
        (self.parts / MANIFEST).write_text(content)


class _Zip:
    """Package files written one by one into a ZIP (``archive``) as they are made: a text
    file is streamed into its entry, an XPT part is added and removed from ``parts``."""

    def __init__(self, archive: ZipFile, parts: Path) -> None:
        self.archive, self.parts = archive, parts

    def text(self, name: str, chunks: Iterable[bytes]) -> str:
        digest = hashlib.sha256()
        with self.archive.open(name, "w", force_zip64=True) as entry:
            for chunk in chunks:
                digest.update(chunk)
                entry.write(chunk)
        return digest.hexdigest()

    def add(self, path: Path) -> str:
        sha256 = _sha256(path)
        self.archive.write(path, path.name)
        path.unlink()
        return sha256

    def manifest(self, content: str) -> None:
        self.archive.writestr(MANIFEST, content)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _counted(
    chunks: Iterable[bytes], counts: ExportCounts, name: str, progress: Progress
) -> Iterator[bytes]:
    told = 0
    for chunk in chunks:
        yield chunk
        progress(name, counts.rows - told, False)
        told = counts.rows


def record_package_export(session: Session, study_code: str) -> Study:
    """The audit event of the package (the session's actor pulled every dataset, masked)."""
    study = service.study_by_code(session, study_code)
    service.audit_export(session, study, ",".join(DATASETS), "package", unblinded=False)
    return study


def expected_size(readers: Readers, study: Study) -> tuple[int, int]:
    """How many files and rows (summed over the files) the package of ``study`` holds, counted
    in the database: for a progress bar."""
    files = rows = 0
    with readers() as session:
        for dataset in DATASETS.values():
            count = row_count(session, study, dataset.name)
            files += len(TEXT_FORMATS) + max(1, -(-count // xpt.MAX_ROWS))
            rows += count * (len(TEXT_FORMATS) + 1)
    return files, rows


def write_package(
    readers: Readers, study: Study, out: Path, progress: Progress = _quiet
) -> dict[str, Any]:
    """Write every dataset of ``study`` in every format into the directory ``out``; return the
    manifest."""
    return _write(readers, study, _Directory(out), progress)


def write_package_zip(
    readers: Readers, study: Study, target: Path, progress: Progress = _quiet
) -> dict[str, Any]:
    """The package as one ZIP file ``target`` (manifest.json inside), written entry by entry:
    memory holds one chunk (or one XPT part), whatever the study's size. A failed export leaves
    no ZIP behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with (
            TemporaryDirectory(prefix="vigil-package-") as parts,
            ZipFile(partial, "w", ZIP_DEFLATED, compresslevel=1) as archive,
        ):
            manifest = _write(readers, study, _Zip(archive, Path(parts)), progress)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _write(
    readers: Readers, study: Study, sink: _Directory | _Zip, progress: Progress
) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    datasets: dict[str, dict[str, int]] = {}
    for dataset in DATASETS.values():
        for file_format in TEXT_FORMATS:
            name = f"{dataset.name.lower()}.{file_format.value}"
            counts = ExportCounts()
            chunks = service.text_chunks(readers, study, dataset, file_format, False, counts)
            sha256 = sink.text(name, _counted(chunks, counts, name, progress))
            files.append({"file": name, "rows": counts.rows, "sha256": sha256})
            progress(name, 0, True)
        with readers() as session:
            rows = BUILDERS[dataset.name](session, study, False, ExportCounts())
            for part in xpt.write_parts(dataset, rows, sink.parts):
                files.append(
                    {"file": part.path.name, "rows": part.rows, "sha256": sink.add(part.path)}
                )
                progress(part.path.name, part.rows, True)
        datasets[dataset.name] = asdict(counts)  # the same in every format
    with readers() as session:
        versions = service.meddra_versions(session, study)
        missing_facts = missing_trial_facts(session, study)
    sha256 = sink.text(DEFINE, [define_xml(study.code, versions)])
    files.append({"file": DEFINE, "rows": None, "sha256": sha256})  # metadata, not rows
    progress(DEFINE, 0, True)
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
            # the TS parameters the protocol's trial section does not give (TSVALNF NI)
            "trial_summary_parameters_not_in_protocol": missing_facts,
        },
        "files": files,
    }
    sink.manifest(json.dumps(manifest, indent=2) + "\n")
    return manifest
