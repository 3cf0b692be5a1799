"""One SDTM export: which study, which dataset, which format, for whom; its audit event; the
chunks it streams. Rows are read in a transaction of their own (``Readers``), opened when the
response starts streaming: the request's transaction, holding the audit event, has committed by
then (a 2xx means the export was recorded)."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.auth.blinding import BLINDED_FIELDS
from app.errors import NotFound
from app.exports.sdtm import writers, xpt
from app.exports.sdtm.builders import BUILDERS, row_count
from app.exports.sdtm.metadata import DATASETS, Dataset
from app.exports.sdtm.rows import ExportCounts
from app.models import AdverseEvent, Participant, Study
from app.vocabulary import RecordStatus

EXPORTED = "export_sdtm"
Readers = Callable[[], AbstractContextManager[Session]]


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    NDJSON = "ndjson"
    XPT = "xpt"


MEDIA_TYPES = {
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.JSON: "application/json",
    FileFormat.NDJSON: "application/x-ndjson",
    FileFormat.XPT: "application/octet-stream",
}


def vigil_version() -> str:
    try:
        return version("vigil")
    except PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
        return "unknown"


def study_by_code(session: Session, code: str) -> Study:
    study = session.scalars(select(Study).where(Study.code == code)).one_or_none()
    if study is None:
        raise NotFound(f"no study has the code {code!r}; GET /api/v1/studies lists the studies")
    return study


def meddra_versions(session: Session, study: Study) -> list[str]:
    """The MedDRA versions the study's valid adverse events were coded with, for define.xml."""
    statement = (
        select(AdverseEvent.meddra_version)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .where(
            Participant.study_id == study.id,
            AdverseEvent.meddra_version.is_not(None),
            AdverseEvent.record_status == RecordStatus.VALID.value,
        )
        .distinct()
    )
    return sorted(version for version in session.scalars(statement) if version)


def audit_export(
    session: Session, study: Study, dataset: Dataset | str, file_format: str, unblinded: bool
) -> None:
    """The export is an audit event of the caller (the session's actor): what was pulled, and
    whether arms were shown (the field names, never the values)."""
    after: dict[str, Any] = {
        "standard": "SDTMIG 3.4",
        "study": study.code,
        "dataset": dataset.name if isinstance(dataset, Dataset) else dataset,
        "format": file_format,
        "unmasked_fields": sorted(BLINDED_FIELDS) if unblinded else [],
    }
    record_event(session, EXPORTED, "studies", str(study.id), after=after)


def text_chunks(
    readers: Readers,
    study: Study,
    dataset: Dataset,
    file_format: FileFormat,
    unblinded: bool,
    counts: ExportCounts | None = None,
) -> Iterator[bytes]:
    """The dataset as CSV, Dataset-JSON or NDJSON, chunk by chunk, read in one transaction;
    ``counts`` (when given) says, once the chunks are all out, what was written and left out."""
    counts = counts if counts is not None else ExportCounts()
    with readers() as session:
        rows = BUILDERS[dataset.name](session, study, unblinded, counts)
        if file_format is FileFormat.CSV:
            chunks = writers.csv_chunks(dataset, rows)
        else:
            meta = writers.header(dataset, study.code, vigil_version())
            if file_format is FileFormat.JSON:
                chunks = writers.dataset_json_chunks(meta, rows)
            else:
                records = row_count(session, study, dataset.name)
                chunks = writers.ndjson_chunks(meta, records, rows)
        for chunk in chunks:
            yield chunk.encode()


def xpt_chunks(
    readers: Readers, study: Study, dataset: Dataset, unblinded: bool, as_zip: bool
) -> Iterator[bytes]:
    """The dataset as one XPT v5 file, or as a ZIP of its parts (``xpt``) when ``as_zip``
    (decided before the response starts: ``xpt_is_split``)."""
    with TemporaryDirectory(prefix="vigil-xpt-") as directory:
        with readers() as session:
            rows = BUILDERS[dataset.name](session, study, unblinded, ExportCounts())
            parts = xpt.write_parts(dataset, rows, Path(directory))
        if not as_zip and len(parts) == 1:
            path = parts[0].path
        else:
            path = Path(directory) / f"{dataset.name.lower()}.zip"
            with ZipFile(path, "w", ZIP_DEFLATED) as archive:
                for part in parts:
                    archive.write(part.path, part.path.name)
        with path.open("rb") as file:
            while chunk := file.read(1 << 16):
                yield chunk


def xpt_is_split(session: Session, study: Study, dataset: Dataset) -> bool:
    """Whether the dataset takes more than one XPT file (it is then sent as a ZIP of them)."""
    return row_count(session, study, dataset.name) > xpt.MAX_ROWS


def dataset_named(domain: str) -> Dataset:
    dataset = DATASETS.get(domain.upper())
    if dataset is None:
        names = ", ".join(name.lower() for name in DATASETS)
        raise NotFound(f"Vigil exports no SDTM dataset {domain!r}; it exports {names}")
    return dataset
