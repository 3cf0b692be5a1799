"""The rules section of a protocol file, and the building blocks every protocol model shares.

A rule is validated data: every model forbids unknown keys and is strict (no ``"160"`` for 160,
no ``yes`` for true), a condition names a known measure in its canonical SDTM unit with a value
that can occur, and a condition group is never empty. The rules engine evaluates these models;
``app.protocols.schema`` re-exports them with the rest of the protocol.
"""

from collections.abc import Hashable, Sequence
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.clinical.measures import MEASURES, get_measure
from app.vocabulary import SEVERITY_ORDER


def _known_measure(code: str) -> str:
    get_measure(code)  # UnknownMeasure is a ValueError naming the known measures
    return code


def unique(values: Sequence[Hashable], what: str) -> None:
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)


def _unique_measures(codes: list[str]) -> list[str]:
    unique(codes, "measure")
    return codes


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
MeasureCode = Annotated[str, AfterValidator(_known_measure)]
MeasureList = Annotated[list[MeasureCode], Field(min_length=1), AfterValidator(_unique_measures)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[FiniteFloat, Field(gt=0)]
Severity = Literal["info", "warning", "critical"]
Direction = Literal["increase", "decrease"]
RuleKind = Literal[
    "threshold",
    "sustained",
    "change_from_baseline",
    "rate_of_change",
    "overdue_measurement",
    "composite_score",
    "dose_gate",
    "adverse_event",
    "cssrs",
]


class StrictModel(BaseModel):
    """Unknown keys are errors, values are never coerced, and a loaded model never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- conditions ---------------------------------------------------------------------------------


def _check_canonical_unit(measure: str, unit: str, *, percent_allowed: bool = False) -> None:
    expected = MEASURES[measure].unit
    if unit == expected or (percent_allowed and unit == "%"):
        return
    also = " or '%'" if percent_allowed else ""
    raise ValueError(
        f"unit mismatch: {measure} rules are written in {expected!r}{also} "
        f"(its SDTM unit), not {unit!r}"
    )


class Condition(StrictModel):
    measure: MeasureCode
    op: Literal[">", ">=", "<", "<="]
    value: FiniteFloat
    unit: str

    @field_validator("value")
    @classmethod
    def _possible_value(cls, value: float, info: ValidationInfo) -> float:
        code, op = info.data.get("measure"), info.data.get("op")
        if code is None:
            return value
        measure = MEASURES[code]
        low, high = measure.possible_min, measure.possible_max
        if not low <= value <= high:
            raise ValueError(
                f"value {value:g} is outside what {code} can measure "
                f"({low:g}..{high:g} {measure.unit})"
            )
        if (op == "<" and value <= low) or (op == ">" and value >= high):
            raise ValueError(
                f"'{code} {op} {value:g}' can never be true: {code} readings lie in "
                f"{low:g}..{high:g} {measure.unit}"
            )
        return value

    @field_validator("unit")
    @classmethod
    def _canonical_unit(cls, unit: str, info: ValidationInfo) -> str:
        code = info.data.get("measure")
        if code is not None:
            _check_canonical_unit(code, unit)
        return unit


class ConditionGroup(StrictModel):
    """Exactly one of ``any`` (fires if one condition holds) or ``all`` (if every one does)."""

    any: list[Condition] | None = None
    all: list[Condition] | None = None

    @field_validator("any", "all")
    @classmethod
    def _not_empty(
        cls, conditions: list[Condition] | None, info: ValidationInfo
    ) -> list[Condition] | None:
        if conditions is not None and not conditions:
            consequence = "would never fire" if info.field_name == "any" else "would always fire"
            raise ValueError(f"empty condition group: an empty {info.field_name!r} {consequence}")
        return conditions

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.any is None) == (self.all is None):
            given = "both" if self.any is not None else "neither"
            raise ValueError(f"a condition group needs exactly one of 'any' or 'all', not {given}")
        return self

    @property
    def combinator(self) -> Literal["any", "all"]:
        return "any" if self.any is not None else "all"

    @property
    def conditions(self) -> list[Condition]:
        return self.any if self.any is not None else (self.all or [])

    def measures(self) -> list[str]:
        return list(dict.fromkeys(condition.measure for condition in self.conditions))


# --- rules --------------------------------------------------------------------------------------


class _RuleBase(StrictModel):
    id: Slug
    severity: Severity
    title: Text  # a sentence a clinician reads
    source: Text  # where the number comes from
    # A critical alert of this rule goes to the medical monitor as soon as it is raised, without
    # waiting for the acknowledgement deadline; only a critical rule may ask for it.
    escalate_at_once: bool = False

    @model_validator(mode="after")
    def _escalates_only_critical(self) -> Self:
        if self.escalate_at_once and self.severity != "critical":
            raise ValueError(
                f"escalate_at_once is for critical rules; this rule's severity is {self.severity!r}"
            )
        return self


class ThresholdRule(_RuleBase):
    kind: Literal["threshold"]
    when: ConditionGroup


class SustainedRule(_RuleBase):
    kind: Literal["sustained"]
    when: ConditionGroup
    consecutive_readings: Annotated[int, Field(ge=2)] | None = None
    duration_minutes: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_span(self) -> Self:
        if (self.consecutive_readings is None) == (self.duration_minutes is None):
            raise ValueError(
                "a sustained rule needs exactly one of consecutive_readings or duration_minutes"
            )
        return self


class ChangeFromBaselineRule(_RuleBase):
    kind: Literal["change_from_baseline"]
    measure: MeasureCode
    direction: Direction
    by: PositiveFloat
    unit: str  # the measure's unit, or "%" of the baseline value

    @field_validator("unit")
    @classmethod
    def _canonical_unit(cls, unit: str, info: ValidationInfo) -> str:
        code = info.data.get("measure")
        if code is not None:
            _check_canonical_unit(code, unit, percent_allowed=True)
        return unit


class RateOfChangeRule(_RuleBase):
    kind: Literal["rate_of_change"]
    measure: MeasureCode
    direction: Direction
    by: PositiveFloat
    unit: str
    within_minutes: PositiveInt

    @field_validator("unit")
    @classmethod
    def _canonical_unit(cls, unit: str, info: ValidationInfo) -> str:
        code = info.data.get("measure")
        if code is not None:
            _check_canonical_unit(code, unit)
        return unit


class OverdueMeasurementRule(_RuleBase):
    kind: Literal["overdue_measurement"]
    measures: MeasureList


class ScoreLevel(StrictModel):
    at_least: int
    severity: Severity
    escalate_at_once: bool = False  # a critical level only, as the rule option

    @model_validator(mode="after")
    def _escalates_only_critical(self) -> Self:
        if self.escalate_at_once and self.severity != "critical":
            raise ValueError(
                f"escalate_at_once is for critical levels; the level at {self.at_least} is "
                f"{self.severity!r}"
            )
        return self


_SCORE_RANGE: dict[str, tuple[int, int]] = {"NEWS2": (0, 20)}


class CompositeScoreRule(_RuleBase):
    kind: Literal["composite_score"]
    score: Literal["NEWS2"]
    levels: list[ScoreLevel] = Field(min_length=1)
    any_single_parameter_3: Severity | None  # required: write `null` to switch it off

    @model_validator(mode="after")
    def _consistent_levels(self) -> Self:
        low, high = _SCORE_RANGE[self.score]
        thresholds = [level.at_least for level in self.levels]
        unique(thresholds, "level at_least")
        for at_least in thresholds:
            if not low < at_least <= high:
                raise ValueError(
                    f"level at_least {at_least} is outside {self.score}'s range ({low}..{high})"
                )
        severities = [level.severity for level in self.levels]
        if self.any_single_parameter_3 is not None:
            severities.append(self.any_single_parameter_3)
        highest = max(severities, key=SEVERITY_ORDER.__getitem__)
        if self.severity != highest:
            raise ValueError(
                f"severity {self.severity!r} must be the highest severity of the levels and "
                f"any_single_parameter_3, which is {highest!r}"
            )
        return self


class DoseGateRule(_RuleBase):
    kind: Literal["dose_gate"]
    dose: Literal["supplemental"]
    block_if: ConditionGroup  # latest readings that keep the gate closed
    block_on_open_alert_severity: Literal["warning", "critical"] | None  # required, may be null
    max_reading_age_minutes: PositiveInt


def _unique_terms(terms: list[str] | None) -> list[str] | None:
    if terms is not None:
        unique([term.casefold() for term in terms], "term")
    return terms


class AdverseEventMatch(StrictModel):
    serious: bool | None = None
    special_interest_terms: Annotated[
        list[Text] | None, Field(min_length=1), AfterValidator(_unique_terms)
    ] = None
    min_ctcae_grade: Annotated[int, Field(ge=1, le=5)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if (
            self.serious is None
            and self.special_interest_terms is None
            and self.min_ctcae_grade is None
        ):
            raise ValueError(
                "empty adverse-event match: give at least one of serious, "
                "special_interest_terms or min_ctcae_grade"
            )
        return self


class AdverseEventRule(_RuleBase):
    kind: Literal["adverse_event"]
    when: AdverseEventMatch
    reporting_deadline_hours: PositiveInt | None = None


def _unique_items(items: list[int]) -> list[int]:
    unique(items, "C-SSRS item")
    return items


class CssrsRule(_RuleBase):
    kind: Literal["cssrs"]
    # the six items of the C-SSRS screener; a "yes" to any listed item fires the rule
    positive_items: Annotated[
        list[Annotated[int, Field(ge=1, le=6)]], Field(min_length=1), AfterValidator(_unique_items)
    ]


AnyRule = (
    ThresholdRule
    | SustainedRule
    | ChangeFromBaselineRule
    | RateOfChangeRule
    | OverdueMeasurementRule
    | CompositeScoreRule
    | DoseGateRule
    | AdverseEventRule
    | CssrsRule
)
Rule = Annotated[AnyRule, Field(discriminator="kind")]
