"""The PostgreSQL cursor of Vigil's engines: psycopg's, with a description built when read.

SQLAlchemy asks each execution's cursor for its ``description``. A statement it has compiled
before (every statement of a reading post) keeps its result metadata, so SQLAlchemy only checks
that the description is not None, and psycopg builds one ``Column`` per result column all the
same (docs/architecture.md, "The cursor's description"). Here the description is a sequence of
those same columns, made the first time something looks inside it.
"""

from collections.abc import Iterator, Sequence
from typing import Any, overload

from psycopg import Column, Cursor
from psycopg.adapt import AdaptersMap
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from psycopg.rows import Row

_ROWS = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class _ResultView:
    """What psycopg's ``Column`` reads of a cursor, kept for one result: the cursor may have
    moved on to another statement by the time a description is read."""

    __slots__ = ("_encoding", "adapters", "pgresult")

    def __init__(self, pgresult: PGresult, encoding: str, adapters: AdaptersMap) -> None:
        self.pgresult = pgresult
        self._encoding = encoding
        self.adapters = adapters


class Description(Sequence[Column]):
    """One result's columns, as psycopg describes them, made on first use."""

    __slots__ = ("_columns", "_cursor", "_result")

    def __init__(self, cursor: "DescribedWhenRead[Any]", result: PGresult) -> None:
        self._cursor = cursor
        self._result = result
        self._columns: list[Column] | None = None

    def _made(self) -> list[Column]:
        if self._columns is None:
            cursor = self._cursor
            view = _ResultView(self._result, cursor._encoding, cursor.adapters)
            self._columns = [Column(view, i) for i in range(self._result.nfields)]  # type: ignore[arg-type]
        return self._columns

    def __len__(self) -> int:
        return self._result.nfields

    @overload
    def __getitem__(self, index: int) -> Column: ...
    @overload
    def __getitem__(self, index: slice) -> list[Column]: ...
    def __getitem__(self, index: int | slice) -> Column | list[Column]:
        return self._made()[index]

    def __iter__(self) -> Iterator[Column]:
        return iter(self._made())


class DescribedWhenRead(Cursor[Row]):
    """psycopg's cursor, its ``description`` the same columns, made when first read."""

    @property
    def description(self) -> Description | None:  # type: ignore[override]
        result = self.pgresult
        if result and (result.nfields or result.status in _ROWS):
            return Description(self, result)
        return None
