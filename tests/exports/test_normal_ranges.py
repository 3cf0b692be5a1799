"""VSNRIND and the range variables (app/exports/sdtm/normal_ranges.py): properties over any
result and any valid reference range."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.clinical.measures import MEASURES
from app.exports.sdtm.normal_ranges import NO_RANGE, range_values
from app.protocols.schema import ReferenceRange

property_test = settings(database=None, deadline=None, max_examples=300)


@st.composite
def ranges(draw: st.DrawFn) -> ReferenceRange:
    measure = MEASURES[draw(st.sampled_from(sorted(MEASURES)))]
    bounds = st.floats(min_value=measure.possible_min, max_value=measure.possible_max)
    low, high = draw(bounds), draw(bounds)
    assume(low < high)
    return ReferenceRange(
        measure=measure.code, low=low, high=high, unit=measure.unit, source="test"
    )


@property_test
@given(ranges(), st.floats(min_value=0, max_value=400))
def test_the_indicator_says_where_the_result_falls(reference: ReferenceRange, value: float):
    values = range_values(reference, value, MEASURES[reference.measure].unit)
    assert (values.low, values.high) == (reference.low, reference.high)
    expected = "LOW" if value < reference.low else "HIGH" if value > reference.high else "NORMAL"
    assert values.indicator == expected
    assert float(values.original_low) == reference.low  # same unit: the same limits as text


@property_test
@given(st.floats(min_value=25, max_value=45))
def test_a_fahrenheit_result_gets_its_range_in_fahrenheit(celsius: float):
    reference = ReferenceRange(measure="TEMP", low=36.1, high=37.2, unit="C", source="test")
    values = range_values(reference, celsius, "F")
    assert (values.original_low, values.original_high) == ("97", "99")
    assert (values.low, values.high) == (36.1, 37.2)  # the standard unit stays C
    fahrenheit = celsius * 9 / 5 + 32
    if not 96.9 <= fahrenheit <= 97.1 and not 98.9 <= fahrenheit <= 99.1:  # rounding aside
        in_f = "LOW" if fahrenheit < 97 else "HIGH" if fahrenheit > 99 else "NORMAL"
        assert values.indicator == in_f


def test_the_limits_themselves_are_normal_and_no_range_is_empty():
    reference = ReferenceRange(measure="PULSE", low=60, high=100, unit="beats/min", source="x")
    assert range_values(reference, 60, "beats/min").indicator == "NORMAL"
    assert range_values(reference, 100, "beats/min").indicator == "NORMAL"
    assert range_values(reference, 100.5, "beats/min").indicator == "HIGH"
    assert range_values(None, 100, "beats/min") == NO_RANGE
