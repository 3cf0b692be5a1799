"""The site's local clock time of a moment (``--DTC``), computed per UTC day: the same text as a
conversion of each moment, DST changes and odd offsets included."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from app.exports.sdtm.local_time import DTC_FORMAT, LocalClock


def naive_utc(*fields: int) -> datetime:
    """A UTC moment as the database gives it to the clock: without a zone."""
    return datetime(*fields, tzinfo=UTC).replace(tzinfo=None)


ZONES = (
    "America/Denver",
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "UTC",
)
moments = st.datetimes(naive_utc(1900, 1, 1), naive_utc(2100, 1, 1))


@given(st.sampled_from(ZONES), st.lists(moments, min_size=1, max_size=20))
def test_local_clock_time_is_the_zone_conversion_of_each_moment(zone, utc_moments):
    clock = LocalClock(zone)  # one clock for many moments, as an export uses it
    for moment in utc_moments:
        expected = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).strftime(DTC_FORMAT)
        assert clock.dtc(moment) == expected


def test_the_hours_around_a_dst_change_read_as_the_site_clock_shows_them():
    clock = LocalClock("America/Denver")  # 2026-03-08 02:00 MST becomes 03:00 MDT (09:00 UTC)
    before, after = naive_utc(2026, 3, 8, 8, 59, 59), naive_utc(2026, 3, 8, 9)
    assert (clock.dtc(before), clock.dtc(after)) == ("2026-03-08T01:59:59", "2026-03-08T03:00:00")
    assert clock.dtc(after + timedelta(days=1)) == "2026-03-09T03:00:00"
