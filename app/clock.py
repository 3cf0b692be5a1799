"""The one place Vigil asks what time it is, so tests can move the clock."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Return an aware UTC datetime; naive values are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "datetime must carry a timezone offset (ISO 8601, e.g. 2026-01-31T09:00:00Z)"
        )
    return value.astimezone(UTC)
