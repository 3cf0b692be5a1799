"""Shared pydantic building blocks for request and response shapes."""

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from app.clock import as_utc


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ShownOnce:
    """Marker of a response model that shows a secret once (a new token): its route takes no
    Idempotency-Key (app/idempotency.py), since keeping the answer would keep the secret."""


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# pydantic reads a number, or a string of digits, as Unix seconds (1700000000 -> 2023-11-14) and
# truncates a midnight datetime to a date: only ISO 8601 text gets as far as its parser.
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def _not_text(value: object, example: str) -> PydanticCustomError:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    given = f"the number {value}" if number else f"{value!r:.40}"
    return PydanticCustomError(
        "iso_8601_text", "{reason}", {"reason": f"give ISO 8601 text, e.g. {example}, not {given}"}
    )


def datetime_text(value: object) -> object:
    """A date and time as ISO 8601 text (or a datetime, from Python callers), nothing else."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATETIME_TEXT.match(value)):
        return value
    raise _not_text(value, "2026-01-31T09:00:00Z")


def date_text(value: object) -> object:
    """A calendar date as ISO 8601 text (or a date, from Python callers), nothing else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return value
    raise _not_text(value, "2026-01-31")


AwareDatetime = Annotated[datetime, BeforeValidator(datetime_text), AfterValidator(as_utc)]
ClinicalDate = Annotated[date, BeforeValidator(date_text)]
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=2000),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]
