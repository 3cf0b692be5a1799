"""Writers of the streamed formats: CSV and CDISC Dataset-JSON v1.1 (the JSON form and the NDJSON
form). Each turns a dataset's rows into chunks of text as they come, so an export holds one
chunk in memory, whatever the study's size. XPT (written whole by its library) is in ``xpt``."""

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from app.exports.sdtm.metadata import Dataset
from app.exports.sdtm.rows import Row

DATASET_JSON_VERSION = "1.1.0"
CHUNK_ROWS = 2000
# one encoder for every row (json.dumps with options makes one per call); whole chunks at once
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _batches(rows: Iterable[Row]) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, CHUNK_ROWS)):
        yield batch


def csv_chunks(dataset: Dataset, rows: Iterable[Row]) -> Iterator[str]:
    """A header of variable names, then one line per row (empty for a missing value), as
    ``csv.writer`` writes them (minimal quoting, CRLF).

    A row is joined with ``str`` (what csv.writer writes of a str, int or float; None is
    empty) and kept when no field needed quoting: no quote, CR or LF in the line and one comma
    per field boundary. Any other row is written by csv.writer itself. Twice as fast on VS."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flushed() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    def quoted(row: Row) -> str:
        writer.writerow(row)
        return flushed()[:-2]

    writer.writerow(dataset.names)
    yield flushed()
    for batch in _batches(rows):
        lines = []
        for row in batch:
            if None in row:
                line = ",".join(["" if value is None else str(value) for value in row])
            else:
                line = ",".join(map(str, row))
            if (
                '"' in line
                or "\r" in line
                or "\n" in line
                or line.count(",") != len(row) - 1
                or len(row) < 2  # a lone empty field is written as ""
            ):
                line = quoted(row)
            lines.append(line)
        lines.append("")
        yield "\r\n".join(lines)


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
    return _ENCODER.encode(value)


def dataset_json_chunks(meta: dict[str, Any], rows: Iterable[Row]) -> Iterator[str]:
    """The JSON form: the metadata, the rows, then ``records`` (a JSON object's keys have no
    order, so the count can follow the rows it counts)."""
    yield _json(meta)[:-1] + ',"rows":['
    written = 0
    for batch in _batches(rows):
        # a batch's rows as one JSON array, without its brackets: the rows comma-separated
        yield ("," if written else "") + _json(batch)[1:-1]
        written += len(batch)
    yield f'],"records":{written}}}'


def ndjson_chunks(meta: dict[str, Any], records: int, rows: Iterable[Row]) -> Iterator[str]:
    """The NDJSON form: the metadata (with ``records``) on the first line, one row per line."""
    yield _json({**meta, "records": records}) + "\n"
    for batch in _batches(rows):
        # The batch as one JSON array: its rows (flat arrays of scalars) are separated by "],["
        # where they meet; when no string holds "],[" too, those are exactly the row breaks.
        text = _json(batch)[1:-1]
        if text.count("],[") == len(batch) - 1:
            yield text.replace("],[", "]\n[") + "\n"
        else:
            yield "\n".join(map(_ENCODER.encode, batch)) + "\n"
