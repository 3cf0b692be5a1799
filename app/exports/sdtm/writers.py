"""Writers of the streamed formats: CSV and CDISC Dataset-JSON v1.1 (the JSON form and the NDJSON
form). Each turns a dataset's rows into chunks of text as they come, so an export holds one
chunk in memory, whatever the study's size. XPT (written whole by its library) is in ``xpt``."""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from app.exports.sdtm.metadata import Dataset
from app.exports.sdtm.rows import Row

DATASET_JSON_VERSION = "1.1.0"
CHUNK_ROWS = 500


def _chunked(rows: Iterable[Row], line: Callable[[Row], str]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(line(row))
        if len(lines) >= CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def csv_chunks(dataset: Dataset, rows: Iterable[Row]) -> Iterator[str]:
    """A header of variable names, then one line per row (empty for a missing value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flushed() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(dataset.names)
    yield flushed()
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK_ROWS:
            writer.writerows(batch)  # None is written as an empty field
            batch.clear()
            yield flushed()
    if batch:
        writer.writerows(batch)
        yield flushed()


def columns(dataset: Dataset) -> list[dict[str, Any]]:
    """The Dataset-JSON column definitions of ``dataset``."""
    described = []
    for variable in dataset.variables:
        column: dict[str, Any] = {
            "itemOID": f"IT.{dataset.name}.{variable.name}",
            "name": variable.name,
            "label": variable.label,
            "dataType": variable.data_type.value,
        }
        if variable.length is not None:
            column["length"] = variable.length
        if variable.key_sequence is not None:
            column["keySequence"] = variable.key_sequence
        described.append(column)
    return described


def header(dataset: Dataset, study_code: str, version: str) -> dict[str, Any]:
    """The Dataset-JSON metadata of one dataset of ``study_code`` (without ``records``)."""
    return {
        "datasetJSONCreationDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"vigil/{study_code}/{dataset.name.lower()}",
        "originator": "Vigil",
        "sourceSystem": {"name": "Vigil", "version": version},
        "studyOID": study_code,
        "metaDataVersionOID": f"MDV.{study_code}.SDTMIG.3.4",
        "itemGroupOID": f"IG.{dataset.name}",
        "name": dataset.name,
        "label": dataset.label,
        "columns": columns(dataset),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dataset_json_chunks(meta: dict[str, Any], rows: Iterable[Row]) -> Iterator[str]:
    """The JSON form: the metadata, the rows, then ``records`` (a JSON object's keys have no
    order, so the count can follow the rows it counts)."""
    yield _json(meta)[:-1] + ',"rows":['
    written = 0

    def line(row: Row) -> str:
        nonlocal written
        written += 1
        return ("," if written > 1 else "") + _json(row)

    yield from _chunked(rows, line)
    yield f'],"records":{written}}}'


def ndjson_chunks(meta: dict[str, Any], records: int, rows: Iterable[Row]) -> Iterator[str]:
    """The NDJSON form: the metadata (with ``records``) on the first line, one row per line."""
    yield _json({**meta, "records": records}) + "\n"
    yield from _chunked(rows, lambda row: _json(row) + "\n")
