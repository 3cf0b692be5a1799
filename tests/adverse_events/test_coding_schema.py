"""The MedDRA coding body (app/adverse_events/schemas.py, MeddraCoding) as a parser: properties
over codes and versions, no database."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.adverse_events.schemas import MeddraCoding
from tests.adverse_events.test_coding import HEADACHE

property_test = settings(database=None, deadline=None, max_examples=200)
codes = st.integers(min_value=10_000_000, max_value=99_999_999).map(str)


def _with_pt_code(code: str) -> dict:
    return HEADACHE | {
        "llt": {"term": "Headache", "code": code},
        "pt": {"term": "Headache", "code": code},
    }


@property_test
@given(codes)
def test_any_8_digit_code_is_accepted(code: str) -> None:
    assume(code not in {"10019233", "10019231", "10029205"})  # the other levels' codes
    assert MeddraCoding.model_validate(_with_pt_code(code)).pt.code == code


@property_test
@given(
    st.one_of(
        st.integers(min_value=0, max_value=9_999_999).map(str),  # 7 digits or fewer
        st.integers(min_value=100_000_000, max_value=10**12).map(str),  # 9 or more
        st.text(min_size=8, max_size=8).filter(lambda t: not t.isascii() or not t.isdigit()),
        codes.map(lambda c: f" {c}"),
        st.integers(min_value=0, max_value=9_999_999).map(lambda n: f"0{n:07d}"),  # leading 0
    )
)
def test_anything_but_8_digits_is_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        MeddraCoding.model_validate(_with_pt_code(code))


@property_test
@given(st.integers(min_value=1, max_value=99), st.sampled_from([0, 1]))
def test_versions_are_a_release_number_and_0_or_1(major: int, minor: int) -> None:
    body = HEADACHE | {"meddra_version": f"{major}.{minor}"}
    assert MeddraCoding.model_validate(body).meddra_version == f"{major}.{minor}"


@pytest.mark.parametrize("version", ["27", "27.2", "27.10", "v27.1", "027.1", "27.1 ", ""])
def test_other_versions_are_refused(version: str) -> None:
    with pytest.raises(ValidationError):
        MeddraCoding.model_validate(HEADACHE | {"meddra_version": version})


def test_a_term_is_at_most_100_characters() -> None:
    long = HEADACHE | {"hlt": {"term": "x" * 101, "code": "10019233"}}
    with pytest.raises(ValidationError):
        MeddraCoding.model_validate(long)
    assert MeddraCoding.model_validate(long | {"hlt": {"term": "x" * 100, "code": "10019233"}})
