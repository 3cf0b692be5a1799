"""The CSV and NDJSON writers take fast paths on plain rows: whatever the values (commas,
quotes, line breaks, "],[" inside text, missing values), they write what csv.writer and
json.dumps write, row for row."""

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from app.exports.sdtm import writers
from app.exports.sdtm.metadata import VS

scalars = st.one_of(
    st.none(),
    st.text(alphabet=st.sampled_from('ab ,"\r\n[]é'), max_size=6),
    st.text(max_size=4),
    st.sampled_from(["],[", "x],[", '"],["', "None"]),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False),
)
rows = st.lists(st.lists(scalars, min_size=1, max_size=6).map(tuple), max_size=30)


@given(rows)
def test_csv_is_what_csv_writer_writes(given_rows):
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerows([VS.names, *given_rows])
    assert "".join(writers.csv_chunks(VS, given_rows)) == expected.getvalue()


@given(rows)
def test_each_ndjson_line_after_the_first_is_one_row_as_json(given_rows):
    text = "".join(writers.ndjson_chunks({"name": "VS"}, len(given_rows), given_rows))
    header, *lines = text.split("\n")[:-1]
    assert json.loads(header)["records"] == len(given_rows)
    expected = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in given_rows]
    assert lines == expected


@given(rows)
def test_dataset_json_rows_read_back_as_written(given_rows):
    document = json.loads("".join(writers.dataset_json_chunks({"name": "VS"}, given_rows)))
    assert document["rows"] == [list(row) for row in given_rows]
    assert document["records"] == len(given_rows)
