"""The planned time point of a reading (VSTPT/VSTPTNUM/VSELTM): properties over any schedule."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.exports.sdtm.time_points import TimePoint, Windows, answered
from app.rules.overdue import DueTime

DOSE = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
due_lists = st.lists(
    st.builds(DueTime, st.integers(0, 600), st.integers(0, 30), st.just("SYSBP")), max_size=12
)
offsets = st.floats(-120, 720, allow_nan=False)


@given(due_lists, offsets)
def test_a_reading_answers_a_due_time_only_within_its_grace(due, minutes):
    measured_at = DOSE + timedelta(minutes=minutes)
    minutes = (measured_at - DOSE).total_seconds() / 60  # as stored: to the microsecond
    point = answered(due, DOSE, measured_at)
    windows = [d for d in due if abs(minutes - d.minute) <= d.grace_minutes]
    if not windows:
        assert point is None
        return
    assert point is not None
    nearest = min(abs(minutes - d.minute) for d in windows)
    assert point.minute in {d.minute for d in windows if abs(minutes - d.minute) == nearest}


@given(due_lists, offsets)
def test_without_an_initial_dose_nothing_is_planned(due, minutes):
    assert answered(due, None, DOSE + timedelta(minutes=minutes)) is None


@given(st.integers(0, 10_000))
def test_the_elapsed_time_is_iso_8601_and_reads_back_as_the_minute(minute):
    elapsed = TimePoint(minute).elapsed
    assert elapsed.startswith("PT")
    hours, _, rest = elapsed[2:].partition("H") if "H" in elapsed else ("0", "", elapsed[2:])
    assert int(hours) * 60 + int(rest.rstrip("M") or 0) == minute


@given(due_lists, offsets)
def test_windows_plan_every_reading_as_answered_does(due, minutes):
    measured_at = DOSE + timedelta(minutes=minutes)
    after = (measured_at - DOSE).total_seconds() / 60
    point = answered(due, DOSE, measured_at)
    assert Windows(due).minute(after) == (point.minute if point else None)
