"""Properties of reading validation, without a database."""

import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clinical.measures import MEASURES, accepted_units
from app.errors import InvalidInput
from app.vitals.service import parse_reading

FAHRENHEIT = {"F", "[degF]"}


def _c_to_f(celsius: float) -> float:
    return celsius * 9 / 5 + 32


def _possible_range(code: str, unit: str) -> tuple[float, float]:
    measure = MEASURES[code]
    if unit in FAHRENHEIT:
        return _c_to_f(measure.possible_min), _c_to_f(measure.possible_max)
    return measure.possible_min, measure.possible_max


def _reading(code: str, value: float, unit: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "measured_at": "2026-02-02T09:00:00+01:00",
        "observations": [{"code": code, "value": value, "unit": unit}],
    }


CODE_AND_UNIT = st.sampled_from(
    [(code, unit) for code in MEASURES for unit in accepted_units(code)]
)


@settings(max_examples=150)
@given(data=st.data(), code_and_unit=CODE_AND_UNIT)
def test_any_possible_value_in_an_accepted_unit_is_accepted(data, code_and_unit):
    code, unit = code_and_unit
    low, high = _possible_range(code, unit)
    value = data.draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    reading = parse_reading(_reading(code, value, unit))
    stored = reading.observations[0].canonical_value()
    assert MEASURES[code].possible_min <= stored <= MEASURES[code].possible_max


@settings(max_examples=150)
@given(data=st.data(), code_and_unit=CODE_AND_UNIT, above=st.booleans())
def test_any_impossible_value_is_refused_naming_the_value(data, code_and_unit, above):
    code, unit = code_and_unit
    low, high = _possible_range(code, unit)
    margin = 0.1  # beyond rounding to the stored precision
    value = data.draw(
        st.floats(min_value=high + margin, max_value=1e6)
        if above
        else st.floats(min_value=-1e6, max_value=low - margin)
    )
    with pytest.raises(InvalidInput) as refused:
        parse_reading(_reading(code, value, unit))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["field"] == "observations.0.value"
    assert "physiologically possible range" in refused.value.errors[0]["message"]


@settings(max_examples=100)
@given(celsius=st.floats(min_value=25, max_value=45), unit=st.sampled_from(sorted(FAHRENHEIT)))
def test_fahrenheit_is_stored_as_the_same_temperature_in_celsius(celsius, unit):
    reading = parse_reading(_reading("TEMP", _c_to_f(celsius), unit))
    assert math.isclose(reading.observations[0].canonical_value(), celsius, abs_tol=0.0051)


ALL_UNITS = sorted({unit for code in MEASURES for unit in accepted_units(code)})


@settings(max_examples=100)
@given(data=st.data(), code=st.sampled_from(sorted(MEASURES)))
def test_a_unit_the_measure_does_not_have_is_refused(data, code):
    unit = data.draw(
        (st.sampled_from(ALL_UNITS) | st.text(min_size=1, max_size=8)).filter(
            lambda u: u not in accepted_units(code)
        )
    )
    with pytest.raises(InvalidInput) as refused:
        parse_reading(_reading(code, 50, unit))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["field"] == "observations.0.unit"
