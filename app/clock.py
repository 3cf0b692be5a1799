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
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None
