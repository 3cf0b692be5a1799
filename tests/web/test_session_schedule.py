"""The session page's measurement schedule: the next due time and what is overdue now, by the
protocol's vitals schedule as the overdue rules count it (from the initial dose, with grace)."""

from datetime import timedelta

import pytest

from app.protocols.loader import load_protocol_file
from app.rules import Reading
from app.web.session.schedule import schedule_state
from tests.conftest import T0
from tests.factories.trial import MDMA

DOSED = T0  # MDMA 1.4: BP and pulse every 30 min to 240 (grace 10), temperature hourly (15)
BP = {"SYSBP": 130.0, "DIABP": 80.0, "PULSE": 80.0}


@pytest.fixture(scope="module")
def protocol():
    return load_protocol_file(MDMA).protocol


def reading(minute: int, values: dict[str, float]) -> Reading:
    return Reading(id=f"r{minute}", measured_at=DOSED + timedelta(minutes=minute), values=values)


def test_nothing_is_due_before_the_initial_dose_or_outside_a_session_in_progress(protocol):
    assert not schedule_state(protocol, None, [], T0, in_progress=True).running
    ended = schedule_state(protocol, DOSED, [], DOSED + timedelta(hours=1), in_progress=False)
    assert not ended.running and ended.next_due is None and ended.overdue == []


def test_the_next_due_time_is_the_first_one_not_met_whose_grace_has_not_passed(protocol):
    readings = [reading(0, {**BP, "TEMP": 36.8}), reading(29, BP)]
    state = schedule_state(
        protocol, DOSED, readings, DOSED + timedelta(minutes=35), in_progress=True
    )
    assert state.overdue == []
    assert state.next_due is not None and state.next_due.minute == 60
    assert set(state.next_due.measures) == {"SYSBP", "DIABP", "PULSE", "TEMP"}
    assert state.next_due.due_at == DOSED + timedelta(minutes=60)


def test_a_measure_missed_is_overdue_until_it_is_measured_again(protocol):
    readings = [reading(0, {**BP, "TEMP": 36.8})]
    now = DOSED + timedelta(minutes=41)  # minute 30 + its 10 min grace has passed
    state = schedule_state(protocol, DOSED, readings, now, in_progress=True)
    assert [(due.minute, set(due.measures)) for due in state.overdue] == [
        (30, {"SYSBP", "DIABP", "PULSE"})
    ]
    assert state.overdue[0].overdue_at == DOSED + timedelta(minutes=40)
    later = DOSED + timedelta(minutes=46)
    late = schedule_state(protocol, DOSED, [*readings, reading(45, BP)], later, in_progress=True)
    assert late.overdue == []  # measured late: no longer waited for


def test_a_measure_missed_at_several_times_is_overdue_once_from_the_latest(protocol):
    state = schedule_state(protocol, DOSED, [], DOSED + timedelta(minutes=100), in_progress=True)
    by_measure = {code: due.minute for due in state.overdue for code in due.measures}
    assert by_measure == {"SYSBP": 60, "DIABP": 60, "PULSE": 60, "TEMP": 60}
    assert state.next_due is not None and state.next_due.minute == 90
