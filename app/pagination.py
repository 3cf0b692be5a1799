"""Cursor pagination over time-ordered ids: stable under concurrent inserts, no OFFSET scans."""

import base64
import binascii
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageParams(BaseModel):
    limit: int
    after: uuid.UUID | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidInput(
            "cursor is not one Vigil issued; pass next_cursor from the previous page unchanged"
        ) from None


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def paginate(
    session: Session, stmt: Select[Any], key: InstrumentedAttribute[uuid.UUID], params: PageParams
) -> tuple[Sequence[Any], str | None]:
    """Rows ordered by ``key`` after the cursor, and the cursor of the next page (None at end)."""
    if params.after is not None:
        stmt = stmt.where(key > params.after)
    rows = session.scalars(stmt.order_by(key).limit(params.limit + 1)).all()
    if len(rows) <= params.limit:
        return rows, None
    rows = rows[: params.limit]
    return rows, encode_cursor(getattr(rows[-1], key.key))
