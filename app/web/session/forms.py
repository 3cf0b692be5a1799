"""The session page's forms: what a refused one shows (the message next to its field, what the
user typed kept), site-local times typed into them, and running a service so that a refusal
changes nothing but what must be kept (the audit record of a refused re-authentication)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.reauthentication import ReauthenticationFailed
from app.errors import InvalidInput, VigilError

T = TypeVar("T")


@dataclass
class FormState:
    """A refused form: which one, its values as typed, and the messages, by field ('' for the
    form as a whole)."""

    name: str
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    status_code: int = 422

    @property
    def message(self) -> str:
        return self.errors.get("", "")


def refused(name: str, values: dict[str, str], error: VigilError) -> FormState:
    """A service's refusal as the form shows it: each field it names, the rest at the top."""
    state = FormState(name, values, status_code=error.status_code)
    for entry in error.errors or []:
        where = str(entry.get("field") or "")
        if where not in values:
            where = ""
        message = str(entry.get("message") or "")
        known = state.errors.get(where)
        state.errors[where] = f"{known}; {message}" if known else message
    if not state.errors:
        state.errors[""] = error.detail
    return state


def invalid(name: str, values: dict[str, str], error: ValidationError) -> FormState:
    state = FormState(name, values)
    for entry in error.errors():
        where = str(entry["loc"][0]) if entry["loc"] else ""
        if where not in values:
            where = ""
        state.errors.setdefault(where, str(entry["msg"]).removeprefix("Value error, "))
    return state


def local_moment(name: str, value: str, zone: str, now: datetime) -> datetime:
    """A time typed in the site's clock (``datetime-local``: 2026-12-03T09:15) as an aware time;
    empty: ``now``."""
    value = value.strip()
    if not value:
        return now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name}: not a time", errors=[{"field": name, "message": "give a date and time"}]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def local_input(moment: datetime, zone: str) -> str:
    """``moment`` in the site's clock as a ``datetime-local`` input shows it."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def attempt(session: Session, action: Callable[[], T]) -> tuple[T | None, VigilError | None]:
    """Run ``action`` in a savepoint: a refusal rolls back what it wrote, except a refused
    re-authentication, whose audit record and failure count must commit (as the API answers
    it rather than raising it)."""
    kept: VigilError | None = None
    try:
        with session.begin_nested():
            try:
                return action(), None
            except ReauthenticationFailed as refusal:
                kept = refusal
    except VigilError as refusal:
        return None, refusal
    return None, kept
