"""Conditions and condition groups, judged on one set of values.

A condition on a measure the values lack is not met. An ``any`` group can be judged as soon as
one of its measures is present and holds if a present condition holds; an ``all`` group can be
judged only when every measure it names is present, and then holds if every condition does.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from app.protocols.schema import Condition, ConditionGroup

_COMPARE = {
    ">": float.__gt__,
    ">=": float.__ge__,
    "<": float.__lt__,
    "<=": float.__le__,
}


def holds(condition: Condition, value: float) -> bool:
    return bool(_COMPARE[condition.op](float(value), float(condition.value)))


@dataclass(frozen=True)
class GroupResult:
    judged: bool  # enough measures present to say yes or no
    met: bool
    held: tuple[tuple[Condition, float], ...]  # the conditions that held, with their values
    values: Mapping[str, float]  # the group's measures present in the values


def judge(group: ConditionGroup, values: Mapping[str, float]) -> GroupResult:
    present = {code: values[code] for code in group.measures() if code in values}
    held = tuple(
        (condition, present[condition.measure])
        for condition in group.conditions
        if condition.measure in present and holds(condition, present[condition.measure])
    )
    if group.combinator == "any":
        judged = bool(present)
        met = bool(held)
    else:
        judged = len(present) == len(group.measures())
        met = judged and len(held) == len(group.conditions)
    return GroupResult(judged=judged, met=met, held=held, values=present)
