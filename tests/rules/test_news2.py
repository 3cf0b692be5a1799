"""NEWS2 band by band against the DESIGN.md table, and the score of a reading."""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clinical.measures import MEASURES
from app.rules import Reading, band_score, news2
from app.rules.news2 import PARAMETERS
from tests.rules.reference import NEWS2_STEP, NEWS2_TABLE, news2_bands

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
property_test = settings(database=None, deadline=None, max_examples=200)


def test_the_table_covers_the_parameters_news2_scores() -> None:
    assert set(NEWS2_TABLE) == set(PARAMETERS)


@pytest.mark.parametrize("code", sorted(NEWS2_TABLE))
def test_every_band_edge_scores_as_the_table_says(code: str) -> None:
    checked = 0
    for low, high, score in news2_bands(code):
        for edge in (low, high):
            if abs(edge) != float("inf"):
                assert band_score(code, edge) == score, (code, edge)
                checked += 1
    assert checked == 2 * len(news2_bands(code)) - 2  # the two open ends have no edge


@pytest.mark.parametrize("code", sorted(NEWS2_TABLE))
def test_every_value_the_table_is_written_at_scores_as_the_table_says(code: str) -> None:
    """Every integer (every 0.1 C for temperature) a measure can read is in one band."""
    step, measure = NEWS2_STEP[code], MEASURES[code]
    bands = news2_bands(code)
    value = measure.possible_min
    while value <= measure.possible_max:
        expected = [score for low, high, score in bands if low <= value <= high]
        assert len(expected) == 1, (code, value)
        assert band_score(code, value) == expected[0], (code, value)
        value = round(value + step, 1)


@pytest.mark.parametrize(
    ("code", "value", "score"),
    [
        ("RESP", 11.5, 0),  # between 9-11 and 12-20: above 11 is the next band
        ("TEMP", 38.05, 1),
        ("TEMP", 36.05, 0),
        ("SYSBP", 219.5, 3),
        ("OXYSAT", 95.5, 0),
    ],
)
def test_values_between_two_bands_fall_in_the_upper_one(
    code: str, value: float, score: int
) -> None:
    assert band_score(code, value) == score


def test_score_of_a_full_reading_with_oxygen_and_confusion() -> None:
    reading = Reading(
        "r1",
        AT,
        {"RESP": 22, "OXYSAT": 95, "SYSBP": 105, "PULSE": 115, "TEMP": 38.4},
        supplemental_oxygen=True,
        new_confusion=True,
    )
    score = news2(reading)
    assert dict(score.parts) == {
        "RESP": 2,
        "OXYSAT": 1,
        "SYSBP": 1,
        "PULSE": 2,
        "TEMP": 1,
        "supplemental_oxygen": 2,
        "new_confusion": 3,
    }
    assert score.total == 12
    assert score.missing == ()
    assert score.single_parameter_3 == ("new_confusion",)


def test_a_partial_reading_is_scored_on_what_it_has() -> None:
    score = news2(Reading("r1", AT, {"SYSBP": 88, "DIABP": 60}))
    assert score.total == 3
    assert score.missing == ("RESP", "OXYSAT", "PULSE", "TEMP")
    assert score.single_parameter_3 == ("SYSBP",)


def test_the_highest_possible_score_is_20() -> None:
    worst = Reading(
        "r1",
        AT,
        {"RESP": 30, "OXYSAT": 85, "SYSBP": 85, "PULSE": 140, "TEMP": 34.0},
        supplemental_oxygen=True,
        new_confusion=True,
    )
    assert news2(worst).total == 20


def _possible(code: str) -> st.SearchStrategy[float]:
    measure = MEASURES[code]
    return st.floats(measure.possible_min, measure.possible_max).map(
        lambda v: round(v, measure.decimals + 1)
    )


VALUES = {code: _possible(code) for code in PARAMETERS}


@property_test
@given(
    values=st.fixed_dictionaries({}, optional=VALUES),
    extra=st.sampled_from(PARAMETERS),
    data=st.data(),
    oxygen=st.booleans(),
    confusion=st.booleans(),
)
def test_a_partial_score_is_a_lower_bound(values, extra, data, oxygen, confusion) -> None:
    """Measuring a missing parameter can only raise the score; totals stay within 0..20."""
    values = {**values, "SYSBP": values.get("SYSBP", 120.0)}  # a reading has some value
    partial = news2(Reading("r1", AT, values, supplemental_oxygen=oxygen, new_confusion=confusion))
    fuller_values = {extra: data.draw(VALUES[extra]), **values}
    fuller = news2(
        Reading("r1", AT, fuller_values, supplemental_oxygen=oxygen, new_confusion=confusion)
    )
    assert 0 <= partial.total <= fuller.total <= 20
    assert partial.total == sum(partial.parts.values())
    assert set(partial.missing) == set(PARAMETERS) - set(values)
