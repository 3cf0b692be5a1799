"""The plausible range of a clinical date or time, checked in one place.

A clinical time is never later than now plus the clock skew allowed between a client and the
server, and never before what it follows (the participant's consent, the session's start, the
event's onset). Callers name the bounds; ``check_within`` refuses a value outside them with a
message that says which range is allowed. No database or web code: the services read the bounds
from the database and pass them in.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from app import clock
from app.config import get_settings

When = TypeVar("When", date, datetime)


class ImplausibleTime(ValueError):
    """A date or time outside its plausible range; the message says which range is allowed."""


@dataclass(frozen=True, slots=True)
class Bound(Generic[When]):
    at: When
    what: str  # what the limit is, e.g. "the participant's consent date 2026-01-02"


def check_within(
    value: When, *, earliest: Bound[When] | None = None, latest: Bound[When] | None = None
) -> When:
    """Return ``value`` if ``earliest.at <= value <= latest.at``; else raise ImplausibleTime."""
    if earliest is not None and value < earliest.at:
        beyond = f"before {earliest.what}"
    elif latest is not None and value > latest.at:
        beyond = f"after {latest.what}"
    else:
        return value
    raise ImplausibleTime(f"{value.isoformat()} is {beyond}; allowed: {_allowed(earliest, latest)}")


def _allowed(earliest: Bound[When] | None, latest: Bound[When] | None) -> str:
    if earliest is not None and latest is not None:
        return f"from {earliest.at.isoformat()} to {latest.at.isoformat()}"
    if earliest is not None:
        return f"from {earliest.at.isoformat()} on"
    assert latest is not None
    return f"up to {latest.at.isoformat()}"


def not_in_future() -> Bound[datetime]:
    """The latest a clinical time can be: now, plus the allowed clock skew."""
    skew = get_settings().clock_skew_seconds
    latest = clock.utcnow() + timedelta(seconds=skew)
    return Bound(latest, f"now (in the future, beyond the allowed clock skew of {skew} s)")


def today_at(timezone: str) -> Bound[date]:
    """The latest a clinical date can be: today in the site's time zone (clock skew allowed)."""
    today = not_in_future().at.astimezone(ZoneInfo(timezone)).date()
    return Bound(today, f"today at the site ({timezone})")


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar day of a site's time zone that an instant falls on."""
    return instant.astimezone(ZoneInfo(timezone)).date()


def start_of_day(day: date, timezone: str) -> datetime:
    """The UTC instant at which a calendar day of a site's time zone begins."""
    return datetime.combine(day, time(), ZoneInfo(timezone)).astimezone(UTC)
