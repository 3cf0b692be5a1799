"""ISO 8601 local clock time (``--DTC``) of many moments in one site's zone, fast: the zone's
UTC offset is looked up once per UTC day and added, instead of a time-zone conversion per value.
A day on which the offset changes (a DST change) is converted value by value, so every moment
reads exactly as ``datetime.astimezone(zone)`` says. Pure: no database."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DTC_FORMAT = "%Y-%m-%dT%H:%M:%S"
_DAY = timedelta(days=1)
_LAST_INSTANT = _DAY - timedelta(microseconds=1)


class LocalClock:
    """The local clock time of one zone, for naive datetimes in UTC (as read from the database)."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)
        self._offsets: dict[date, timedelta | None] = {}  # None: the offset changes that day

    def _offset_on(self, day: date) -> timedelta | None:
        if not 1000 <= day.year <= 9998:  # four-digit years only (strftime pads no others)
            return None
        start = datetime.combine(day, time(), tzinfo=UTC)
        first = start.astimezone(self._zone).utcoffset()
        last = (start + _LAST_INSTANT).astimezone(self._zone).utcoffset()
        return first if first == last else None

    def dtc(self, moment: datetime) -> str:
        """``moment`` (naive, UTC) as local clock time, ISO 8601 to the second, no offset."""
        day = moment.date()
        try:
            offset = self._offsets[day]
        except KeyError:
            offset = self._offsets[day] = self._offset_on(day)
        if offset is None:
            return moment.replace(tzinfo=UTC).astimezone(self._zone).strftime(DTC_FORMAT)
        return (moment + offset).isoformat(timespec="seconds")
