"""Declarative base, naming convention, column types shared by every table."""

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, MetaData, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.clock import as_utc, utcnow
from app.ids import new_id
from app.vocabulary import RecordStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on SQLite (no tz support) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid(), dict[str, Any]: JSON()}

    def __init__(self, **kwargs: Any) -> None:
        """Apply Python-side column defaults now, so the audit record of a new row is complete."""
        cls = type(self)
        for key, default in _column_defaults(cls):
            if key not in kwargs:
                kwargs[key] = default.arg(None) if default.is_callable else default.arg
        for key, value in kwargs.items():
            if not hasattr(cls, key):
                raise TypeError(f"{key!r} is not an attribute of {cls.__name__}")
            setattr(self, key, value)


@cache
def _column_defaults(cls: type[Base]) -> tuple[tuple[str, Any], ...]:
    """The (attribute, default) pairs of a model's columns that have a Python-side default."""
    return tuple(
        (column.key, column.default)
        for column in cls.__table__.columns
        if column.default is not None and (column.default.is_scalar or column.default.is_callable)
    )


class HasId:
    """A time-ordered UUIDv7 primary key."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Audited:
    """Marker: every insert and update of this table writes an audit record; deletes are refused."""

    __audit_exclude__: frozenset[str] = frozenset({"updated_at"})


def record_status_check() -> CheckConstraint:
    """The database refuses a record_status that is not a RecordStatus
    (``ck_<table>_record_status``)."""
    values = ", ".join(f"'{status.value}'" for status in RecordStatus)
    return CheckConstraint(f"record_status IN ({values})", name="record_status")
