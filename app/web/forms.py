"""What the record forms of the web client share: the posted form read once, times typed in a
site's clock, and a refusal (the schema's or the service's) as messages by field."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.checked_input import text_problem
from app.errors import InvalidInput, VigilError

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")

FieldErrors = dict[str, str]  # field name -> the message shown at it
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


async def posted_form(request: Request) -> FormData:
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


class FormRefused(Exception):
    """A form the page refuses before calling the service: its messages by field."""

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def texts(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The named text fields as typed (missing ones empty), refusing control characters as the
    API's input check does."""
    values = {name: str(form.get(name) or "") for name in names}
    errors = {n: f"this text {problem}" for n, v in values.items() if (problem := text_problem(v))}
    if errors:
        raise FormRefused(errors)
    return values


def in_site_time(value: str, zone: str, field: str) -> datetime | None:
    """A time typed in the site's clock (``2026-12-03T09:30``), as an aware datetime; None when
    left empty."""
    if not value.strip():
        return None
    try:
        return datetime.strptime(value.strip()[:16], LOCAL_INPUT).replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise FormRefused({field: "give a date and a time"}) from None


def for_input(moment: datetime | None, zone: str) -> str:
    """A stored time as a datetime-local input shows it, in the site's clock."""
    return "" if moment is None else moment.astimezone(ZoneInfo(zone)).strftime(LOCAL_INPUT)


def schema_errors(error: ValidationError) -> FieldErrors:
    """A schema's refusal by field (the first message of each)."""
    found: FieldErrors = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "form"
        message = "required" if item["type"] == "missing" else str(item["msg"])
        found.setdefault(field, message.removeprefix("Value error, "))
    return found


def service_errors(error: VigilError) -> FieldErrors:
    """A service's refusal by field, when it names them; else the whole message."""
    found: FieldErrors = {}
    for item in error.errors or []:
        field, message = str(item.get("field", "form")), str(item.get("message", ""))
        found[field] = f"{found[field]}; {message}" if field in found else message
    return found or {"form": error.detail}


def validated(model: type[M], data: dict[str, Any], errors: FieldErrors) -> M:
    """``data`` as the service's input schema, or FormRefused with the schema's messages and
    those already found (``errors``), each at its field."""
    try:
        created = model.model_validate(data)
    except ValidationError as refused:
        errors = schema_errors(refused) | errors
    if errors:
        raise FormRefused(errors)
    return created


def submit(
    session: Session, build: Callable[[], M], save: Callable[[M], R]
) -> tuple[R | None, FieldErrors]:
    """Build the service's input from the form and save it in a savepoint: (what was saved,
    no errors), or (None, the messages by field) when the form or the service refuses it; a
    refusal leaves nothing behind."""
    try:
        data = build()
        with session.begin_nested():
            return save(data), {}
    except FormRefused as refused:
        return None, refused.errors
    except InvalidInput as refused:
        return None, service_errors(refused)
