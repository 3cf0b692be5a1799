"""The PostgreSQL cursor describes a result as psycopg's own does, whenever it is read."""

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection, text

from app.db import make_engine
from app.pg_cursor import DescribedWhenRead
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="VIGIL_TEST_POSTGRES_URL is not set")

VARIED = (
    "SELECT 1 AS n, 12.5::numeric(5, 2) AS dose_mg, 'S01'::varchar(10) AS site,"
    " now() AS at, '{}'::json AS finding, NULL::uuid AS nothing"
)


def _described(description: object) -> list[tuple[object, ...]]:
    return [tuple(column) for column in description]  # type: ignore[attr-defined]


@pytest.fixture
def connection() -> Iterator[Connection]:
    assert POSTGRES_URL
    engine = make_engine(POSTGRES_URL)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_the_engines_cursor_describes_a_result_as_psycopgs_does(connection: Connection):
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    assert isinstance(cursor, DescribedWhenRead)
    cursor.execute(VARIED)
    assert POSTGRES_URL
    with psycopg.connect(POSTGRES_URL.replace("+psycopg", "")) as plain:
        expected = plain.execute(VARIED).description
    assert expected is not None and cursor.description is not None
    assert len(cursor.description) == 6
    assert _described(cursor.description) == _described(expected)
    assert [column.name for column in cursor.description[1:3]] == ["dose_mg", "site"]
    assert cursor.description[-1].name == "nothing"
    with pytest.raises(IndexError):
        cursor.description[6]


def test_a_description_read_after_the_next_statement_still_describes_its_own(
    connection: Connection,
):
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(VARIED)
    first = cursor.description
    cursor.execute("SELECT 'x' AS other")
    assert first is not None
    assert [column.name for column in first] == ["n", "dose_mg", "site", "at", "finding", "nothing"]
    assert [column.name for column in cursor.description or []] == ["other"]


def test_a_statement_without_rows_has_no_description_and_one_without_columns_an_empty_one(
    connection: Connection,
):
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("CREATE TEMPORARY TABLE scratch (n integer)")
    assert cursor.description is None
    cursor.execute("SELECT")
    assert cursor.description is not None and len(cursor.description) == 0


def test_sqlalchemy_reads_rows_and_names_through_it(connection: Connection):
    result = connection.execute(text(VARIED))
    assert list(result.keys()) == ["n", "dose_mg", "site", "at", "finding", "nothing"]
    row = result.one()
    assert (row.n, str(row.dose_mg), row.site, row.finding, row.nothing) == (
        1,
        "12.50",
        "S01",
        {},
        None,
    )
