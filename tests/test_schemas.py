"""How clinical dates and times are read from JSON: ISO 8601 text only, never a number."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.participants.schemas import Enrolment
from app.schemas import AwareDatetime

aware = TypeAdapter(AwareDatetime)
numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _refused(validate, value) -> str:
    with pytest.raises(ValidationError) as refused:
        validate(value)
    return str(refused.value)


@given(number=numbers)
def test_a_number_is_neither_a_time_nor_a_date(number):
    # pydantic alone reads 1700000000 (or "1700000000") as Unix seconds, 0 as 1970-01-01
    for value in (number, str(number)):
        assert "ISO 8601" in _refused(aware.validate_python, value)
        assert "ISO 8601" in _refused(lambda v: Enrolment(enrolled_on=v), value)


@given(moment=st.datetimes(timezones=offsets))
@example(moment=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
@example(moment=datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))))
def test_any_time_with_an_offset_is_read_as_the_same_instant_or_refused_as_out_of_range(moment):
    try:
        expected = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: no UTC equivalent
        assert "outside the years 1-9999" in _refused(aware.validate_python, moment.isoformat())
        return
    parsed = aware.validate_python(moment.isoformat())
    assert parsed == expected
    assert parsed.tzinfo is UTC


@given(day=st.dates())
def test_a_date_is_read_from_its_iso_text_and_a_datetime_is_not_a_date(day):
    assert Enrolment.model_validate({"enrolled_on": day.isoformat()}).enrolled_on == day
    midnight = datetime.combine(day, datetime.min.time(), UTC).isoformat()
    assert "ISO 8601" in _refused(lambda v: Enrolment(enrolled_on=v), midnight)
