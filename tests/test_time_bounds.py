from datetime import UTC, date, datetime, timedelta, timezone
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import clock
from app.time_bounds import (
    Bound,
    ImplausibleTime,
    check_within,
    not_in_future,
    start_of_day,
    today_at,
)

# Aware instants away from the ends of the calendar, so that every offset has a UTC equivalent.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1800, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=offsets,
)
days = st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 1, 1))
ZONES = ["UTC", "America/Denver", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"]


def _inside(value, earliest, latest) -> bool:
    return (earliest is None or earliest <= value) and (latest is None or value <= latest)


@pytest.mark.parametrize("values", [instants, days], ids=["datetimes", "dates"])
@given(data=st.data())
def test_a_value_passes_exactly_when_it_lies_within_its_bounds(values, data):
    value = data.draw(values)
    earliest = data.draw(st.none() | values)
    latest = data.draw(st.none() | values)
    bounds = {
        "earliest": None if earliest is None else Bound(earliest, "the consent"),
        "latest": None if latest is None else Bound(latest, "now"),
    }
    if _inside(value, earliest, latest):
        assert check_within(value, **bounds) == value
        return
    with pytest.raises(ImplausibleTime) as refused:
        check_within(value, **bounds)
    message = str(refused.value)
    assert message.startswith(value.isoformat())
    assert ("is before the consent" if earliest and value < earliest else "is after now") in message
    # the message says which range is allowed
    for limit in (earliest, latest):
        if limit is not None:
            assert limit.isoformat() in message.split("allowed: ")[1]


@given(
    now=instants,
    beyond=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3650)),
)
def test_now_plus_the_clock_skew_is_the_latest_time_allowed(now, beyond):
    skew = timedelta(seconds=300)  # VIGIL_CLOCK_SKEW_SECONDS' default
    with patch.object(clock, "utcnow", lambda: now):
        latest = not_in_future()
        assert check_within(now + skew, latest=latest) == now + skew
        with pytest.raises(ImplausibleTime, match="in the future, beyond the allowed clock skew"):
            check_within(now + skew + beyond, latest=latest)


def test_today_is_the_calendar_day_at_the_site():
    noon_utc = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    with patch.object(clock, "utcnow", lambda: noon_utc):
        assert today_at("Pacific/Kiritimati").at == date(2026, 6, 16)  # UTC+14: 02:00 next day
        assert today_at("Pacific/Pago_Pago").at == date(2026, 6, 15)  # UTC-11: 01:00
    # 23:57 UTC is already tomorrow once the clock skew (300 s) is allowed
    with patch.object(clock, "utcnow", lambda: datetime(2026, 6, 15, 23, 57, tzinfo=UTC)):
        assert today_at("UTC").at == date(2026, 6, 16)


@given(day=days, zone=st.sampled_from(ZONES))
def test_a_day_starts_at_the_site_on_that_day_and_not_earlier(day, zone):
    start = start_of_day(day, zone)
    assert start.tzinfo is UTC
    assert start.astimezone(ZoneInfo(zone)).date() == day
    assert (start - timedelta(microseconds=1)).astimezone(ZoneInfo(zone)).date() < day
