"""Properties of the C-SSRS screener derivation, over every consistent way to answer it."""

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from app.clinical.cssrs import Answers, RecallPeriod, Risk, inconsistencies, positive_items, risk

RANK = {Risk.NONE: 0, Risk.LOW: 1, Risk.MODERATE: 2, Risk.HIGH: 3}
FIELDS = [
    "wish_to_be_dead",
    "suicidal_thoughts",
    "ideation_with_methods",
    "ideation_with_intent",
    "ideation_with_plan_and_intent",
    "suicidal_behaviour",
]


@st.composite
def screens(draw):
    """A screen answered the way the screener asks it: 3-5 only after a yes to 2, the 3-month
    question only after a yes to 6."""
    thoughts = draw(st.booleans())
    behaviour = draw(st.booleans())
    recall = draw(st.sampled_from(RecallPeriod))
    within = draw(st.booleans()) if behaviour else None
    if within is False and recall == RecallPeriod.PAST_MONTH:
        within = True
    return Answers(
        wish_to_be_dead=draw(st.booleans()),
        suicidal_thoughts=thoughts,
        ideation_with_methods=draw(st.booleans()) if thoughts else None,
        ideation_with_intent=draw(st.booleans()) if thoughts else None,
        ideation_with_plan_and_intent=draw(st.booleans()) if thoughts else None,
        suicidal_behaviour=behaviour,
        behaviour_within_3_months=within,
        recall_period=recall,
    )


def _with_more_yes(answers: Answers, items: set[int], within: bool) -> Answers:
    """The same screen with a yes to more items (and whatever the skip logic then asks)."""
    changes: dict[str, Any] = {FIELDS[item - 1]: True for item in items}
    if 2 in items and not answers.suicidal_thoughts:
        for item in (3, 4, 5):
            changes.setdefault(FIELDS[item - 1], False)
    if 6 in items:
        was = bool(answers.behaviour_within_3_months)
        changes["behaviour_within_3_months"] = (
            was or within or (answers.recall_period == RecallPeriod.PAST_MONTH)
        )
    if 3 in items or 4 in items or 5 in items:
        changes["suicidal_thoughts"] = True
        for item in (3, 4, 5):
            changes.setdefault(FIELDS[item - 1], answers.answer(item) or False)
    return dataclasses.replace(answers, **changes)


@given(screens())
def test_consistent_screens_are_accepted_and_positive_items_are_the_yes_answers(answers):
    assert inconsistencies(answers) == []
    yes = {i + 1 for i, field in enumerate(FIELDS) if getattr(answers, field) is True}
    assert set(positive_items(answers)) == yes
    assert positive_items(answers) == sorted(yes)
    assert (risk(answers) == Risk.NONE) == (not yes)


@given(screens(), st.sets(st.integers(1, 6), min_size=1), st.booleans())
def test_answering_yes_to_more_items_never_lowers_the_risk(answers, items, within):
    more = _with_more_yes(answers, items, within)
    assert inconsistencies(more) == []
    assert set(positive_items(answers)) <= set(positive_items(more))
    assert RANK[risk(more)] >= RANK[risk(answers)]


@given(screens())
def test_risk_matches_the_triage_table(answers):
    yes = set(positive_items(answers))
    if yes & {4, 5} or (6 in yes and answers.behaviour_within_3_months):
        expected = Risk.HIGH
    elif 3 in yes or 6 in yes:
        expected = Risk.MODERATE
    elif yes & {1, 2}:
        expected = Risk.LOW
    else:
        expected = Risk.NONE
    assert risk(answers) == expected


@given(screens(), st.sampled_from([3, 4, 5]), st.booleans())
def test_an_item_answered_against_the_skip_logic_is_refused(answers, item, value):
    field = FIELDS[item - 1]
    if answers.suicidal_thoughts:
        broken = dataclasses.replace(answers, **{field: None})
    else:
        broken = dataclasses.replace(answers, **{field: value})
    assert field in [f for f, _ in inconsistencies(broken)]
