"""SAS XPORT v5 files through pyreadstat (a maintained library; no hand-written binary format).

The library writes a file whole from a data frame, so a dataset is written in parts of at most
``max_rows`` rows, one file each (``vs.xpt``, or ``vs1.xpt``, ``vs2.xpt``, ... when it takes
more than one), as FDA's guidance on splitting large datasets describes: memory holds one part,
whatever the study's size.
"""

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat

from app.exports.sdtm.metadata import Dataset
from app.exports.sdtm.rows import Row

MAX_ROWS = 100_000  # about 25 MB of VS per file; the peak grows with it (bench/exports_vs.py)


@dataclass(frozen=True)
class XptPart:
    path: Path
    rows: int


def _frame(dataset: Dataset, rows: list[Row]) -> pd.DataFrame:
    data = {}
    for index, variable in enumerate(dataset.variables):
        values = [row[index] for row in rows]
        if variable.numeric:
            data[variable.name] = pd.Series(values, dtype="float64")
        else:
            data[variable.name] = pd.Series(
                ["" if value is None else str(value) for value in values], dtype="object"
            )
    return pd.DataFrame(data, columns=list(dataset.names))


def write_parts(
    dataset: Dataset, rows: Iterable[Row], directory: Path, max_rows: int | None = None
) -> list[XptPart]:
    """Write ``rows`` as XPT v5 files of at most ``max_rows`` (``MAX_ROWS``) rows into
    ``directory``."""
    max_rows = max_rows or MAX_ROWS
    name = dataset.name.lower()
    written: list[tuple[Path, int]] = []
    iterator = iter(rows)
    for number in itertools.count(1):
        part = list(itertools.islice(iterator, max_rows))
        if not part and number > 1:
            break
        path = directory / f"{name}{number}.xpt"
        pyreadstat.write_xport(
            _frame(dataset, part),
            str(path),
            file_label=dataset.label,
            column_labels=[variable.label for variable in dataset.variables],
            table_name=dataset.name,
            file_format_version=5,
        )
        written.append((path, len(part)))
        if len(part) < max_rows:
            break
    if len(written) == 1:
        single = written[0][0].rename(directory / f"{name}.xpt")
        written = [(single, written[0][1])]
    return [XptPart(path, count) for path, count in written]
