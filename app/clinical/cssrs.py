"""The C-SSRS screener (Posner et al. 2011): its six items, skip logic and triage. Pure.

Items: 1 wish to be dead; 2 non-specific active suicidal thoughts; 3 active ideation with any
methods, without intent to act; 4 active ideation with some intent to act, without a specific
plan; 5 active ideation with a specific plan and intent; 6 suicidal behaviour (with, when yes,
whether it was within the past 3 months).

Skip logic: items 3-5 are asked only when item 2 is yes; the 3-month question only when item 6
is yes. Triage, as in the screener's published guidance: a yes to item 1 or 2 is low risk, to
item 3 moderate, to item 4 or 5 high; suicidal behaviour (item 6) is high risk within the past
3 months and moderate before that. The risk is that of the riskiest yes.
"""

from dataclasses import dataclass
from enum import StrEnum


class RecallPeriod(StrEnum):
    LIFETIME = "lifetime"
    SINCE_LAST_VISIT = "since_last_visit"
    PAST_MONTH = "past_month"


class Risk(StrEnum):
    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


# item number -> answer field, in the screener's order
ITEMS = {
    1: "wish_to_be_dead",
    2: "suicidal_thoughts",
    3: "ideation_with_methods",
    4: "ideation_with_intent",
    5: "ideation_with_plan_and_intent",
    6: "suicidal_behaviour",
}
FOLLOWS_ITEM_2 = (3, 4, 5)
ITEM_RISK = {1: Risk.LOW, 2: Risk.LOW, 3: Risk.MODERATE, 4: Risk.HIGH, 5: Risk.HIGH}


@dataclass(frozen=True)
class Answers:
    """One screen as answered; None is a question skipped by the screener's logic."""

    wish_to_be_dead: bool
    suicidal_thoughts: bool
    ideation_with_methods: bool | None
    ideation_with_intent: bool | None
    ideation_with_plan_and_intent: bool | None
    suicidal_behaviour: bool
    behaviour_within_3_months: bool | None
    recall_period: RecallPeriod = RecallPeriod.LIFETIME

    def answer(self, item: int) -> bool | None:
        value: bool | None = getattr(self, ITEMS[item])
        return value


def inconsistencies(answers: Answers) -> list[tuple[str, str]]:
    """(field, message) for every answer the skip logic forbids or requires."""
    problems = []
    for item in FOLLOWS_ITEM_2:
        field, value = ITEMS[item], answers.answer(item)
        if answers.suicidal_thoughts and value is None:
            problems.append(
                (field, f"item {item} must be answered when item 2 (suicidal_thoughts) is yes")
            )
        if not answers.suicidal_thoughts and value is not None:
            problems.append(
                (
                    field,
                    f"item {item} is asked only when item 2 (suicidal_thoughts) is yes; "
                    "leave it out (null) when item 2 is no",
                )
            )
    within = answers.behaviour_within_3_months
    if answers.suicidal_behaviour and within is None:
        problems.append(
            (
                "behaviour_within_3_months",
                "behaviour_within_3_months must be answered when item 6 (suicidal_behaviour) "
                "is yes",
            )
        )
    if not answers.suicidal_behaviour and within is not None:
        problems.append(
            (
                "behaviour_within_3_months",
                "behaviour_within_3_months is asked only when item 6 (suicidal_behaviour) is yes; "
                "leave it out (null) when item 6 is no",
            )
        )
    if answers.recall_period == RecallPeriod.PAST_MONTH and within is False:
        problems.append(
            (
                "behaviour_within_3_months",
                "behaviour recalled over the past month is within 3 months; answer yes",
            )
        )
    return problems


def positive_items(answers: Answers) -> list[int]:
    return [item for item in ITEMS if answers.answer(item)]


def risk(answers: Answers) -> Risk:
    levels = [ITEM_RISK[item] for item in positive_items(answers) if item in ITEM_RISK]
    if answers.suicidal_behaviour:
        levels.append(Risk.HIGH if answers.behaviour_within_3_months else Risk.MODERATE)
    return max(levels, key=lambda level: level.rank, default=Risk.NONE)
