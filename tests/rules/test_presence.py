"""The therapist pair before the initial dose (app.rules.dose_limits.presence_problems): a
problem exactly when the protocol wants two therapists, the dose is the initial one, and the pair
was not attested present at or before it."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.rules.dose_limits import presence_problems

T0 = datetime(2026, 2, 2, 8, tzinfo=UTC)
offsets = st.integers(min_value=-600, max_value=600).map(lambda m: T0 + timedelta(minutes=m))


@given(
    required=st.sampled_from([1, 2]),
    kind=st.sampled_from(["initial", "supplemental"]),
    dosed_at=offsets,
    present_at=st.none() | offsets,
)
def test_a_problem_exactly_when_the_pair_was_not_there_before_the_initial_dose(
    required, kind, dosed_at, present_at
):
    problems = presence_problems(required, kind, dosed_at, present_at)
    expected = required == 2 and kind == "initial" and (present_at is None or present_at > dosed_at)
    assert bool(problems) == expected
    assert all(p.field == "therapists" and "two therapists" in p.message for p in problems)
