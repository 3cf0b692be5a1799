"""What the record forms of the web client share: the posted form read once, times typed in a
site's clock, and a refusal (the schema's or the service's) as messages by field."""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.checked_input import text_problem
from app.errors import VigilError

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
