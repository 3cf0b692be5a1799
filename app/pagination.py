"""Keyset pagination, the same on every list route: ``?limit=&cursor=``, answered as a Page whose
``next_cursor`` is opaque (the sort key of the page's last item). Stable under concurrent
inserts, no OFFSET scans."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator

from app import clock
from app.errors import InvalidInput

T = TypeVar("T")
Column = InstrumentedAttribute[Any]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int
    cursor: str | None


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    return clock.as_utc(datetime.fromisoformat(value))


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _identifier(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError(value)
    return uuid.UUID(value)


# How a sort key's value is read back from a cursor, by the column's Python type.
_READ: dict[type, Callable[[Any], Any]] = {
    datetime: _timestamp,
    int: _integer,
    str: _text,
    uuid.UUID: _identifier,
}


def _python_type(column: Column) -> type:
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):  # UTCDateTime
        sql_type = sql_type.impl_instance
    return sql_type.python_type


def _written(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


def encode_cursor(values: Sequence[Any]) -> str:
    text = json.dumps([_written(value) for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, columns: Sequence[Column]) -> tuple[Any, ...]:
    """The sort key a cursor holds; InvalidInput (422) if it is not one issued for ``columns``."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(columns):
            raise ValueError(values)
        return tuple(
            _READ[_python_type(column)](value)
            for column, value in zip(columns, values, strict=True)
        )
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        message = "not a cursor Vigil issued for this list"
        raise InvalidInput(
            "cursor is not one Vigil issued for this list; pass next_cursor from the previous "
            "page unchanged",
            errors=[{"field": "cursor", "message": message}],
        ) from None


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def paginate(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[uuid.UUID] | InstrumentedAttribute[str],
    params: PageParams,
    *,
    order_by: Sequence[Column] = (),
) -> tuple[Sequence[Any], str | None]:
    """The rows of ``stmt`` (one entity) in ``order_by`` then ``key`` order after the cursor,
    and the cursor of the next page (None at the end). ``key`` is unique; ``order_by`` columns
    may be of a joined table."""
    columns = (*order_by, key)
    if params.cursor is not None:
        after = decode_cursor(params.cursor, columns)
        bound = [literal(value, column.type) for column, value in zip(columns, after, strict=True)]
        stmt = stmt.where(tuple_(*columns) > tuple_(*bound))
    stmt = stmt.add_columns(*columns).order_by(*columns).limit(params.limit + 1)
    rows = session.execute(stmt).all()
    items = [row[0] for row in rows[: params.limit]]
    if len(rows) <= params.limit:
        return items, None
    return items, encode_cursor(rows[params.limit - 1][1:])
