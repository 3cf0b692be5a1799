"""The protocol file format: pydantic models for ``protocols/*.yaml``.

A protocol is validated data. Every model forbids unknown keys and is strict (no ``"160"`` for
160, no ``yes`` for true), so a typo or a wrong type is a load error, never a silent default.
The rules section lives in ``rule_schema`` and is re-exported here. Checks that need more than one
part of a protocol (duplicate ids, a dosing entry that names an unknown visit, a measure that is
never scheduled) are in :func:`find_cross_reference_problems`; the loader turns each problem into
an issue with the path and line of the offending node. ``docs/protocol-format.md`` is the format
reference.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Self, get_args, overload

from pydantic import Field, FiniteFloat, ValidationInfo, field_validator, model_validator

from app.protocols.rule_schema import (
    SEVERITY_ORDER,
    AdverseEventMatch,
    AdverseEventRule,
    AnyRule,
    ChangeFromBaselineRule,
    Code,
    CompositeScoreRule,
    Condition,
    ConditionGroup,
    CssrsRule,
    Direction,
    DoseGateRule,
    MeasureCode,
    MeasureList,
    NonNegativeInt,
    OverdueMeasurementRule,
    PositiveFloat,
    PositiveInt,
    RateOfChangeRule,
    Rule,
    RuleKind,
    ScoreLevel,
    Severity,
    Slug,
    StrictModel,
    SustainedRule,
    Text,
    ThresholdRule,
    unique,
)

__all__ = [
    "CROSS_REFERENCE_COLLECTOR",
    "SEVERITY_ORDER",
    "AdverseEventMatch",
    "AdverseEventRule",
    "Alerting",
    "AnyRule",
    "Arm",
    "BaselineRequirement",
    "ChangeFromBaselineRule",
    "CompositeScoreRule",
    "Condition",
    "ConditionGroup",
    "CrossReferenceProblem",
    "CssrsRule",
    "DayWindow",
    "Direction",
    "DoseGateRule",
    "Dosing",
    "DosingSessionDefinition",
    "DrugInfo",
    "Loc",
    "MeasureCode",
    "MeasurementInterval",
    "MinuteWindow",
    "OverdueMeasurementRule",
    "Protocol",
    "ProtocolInfo",
    "Randomisation",
    "RateOfChangeRule",
    "Rule",
    "RuleKind",
    "ScoreLevel",
    "Severity",
    "SupplementalDose",
    "SustainedRule",
    "ThresholdRule",
    "VisitDefinition",
    "VisitKind",
    "VitalsSchedule",
    "find_cross_reference_problems",
]

Loc = tuple[str | int, ...]
VisitKind = Literal[
    "screening", "preparatory", "experimental", "integration", "outcome", "follow_up"
]

# Put a list here in the validation context to receive cross-reference problems instead of a
# single ValueError (the loader does, to report each problem at its own path and line).
CROSS_REFERENCE_COLLECTOR = "vigil.protocols.cross_reference_problems"


# --- study design -------------------------------------------------------------------------------


class DrugInfo(StrictModel):
    name: Text
    unit: Literal["mg"]
    route: Text


class ProtocolInfo(StrictModel):
    id: Slug
    version: Text  # the amendment label; quote it in YAML ("1.0"), or it is a number
    title: Text
    drug: DrugInfo
    sources: list[Text] = Field(min_length=1)


class Arm(StrictModel):
    code: Code
    label: Text
    blinded_label: Text


class Randomisation(StrictModel):
    ratio: list[PositiveInt] = Field(min_length=1)
    block_size: PositiveInt
    stratify_by: list[Literal["site"]]

    @field_validator("block_size")
    @classmethod
    def _block_holds_whole_ratio(cls, block_size: int, info: ValidationInfo) -> int:
        ratio = info.data.get("ratio")
        if ratio and block_size % sum(ratio) != 0:
            raise ValueError(
                f"block_size {block_size} is not a multiple of the ratio total {sum(ratio)}"
            )
        return block_size

    @field_validator("stratify_by")
    @classmethod
    def _unique_factors(cls, factors: list[str]) -> list[str]:
        unique(factors, "stratification factor")
        return factors


class DayWindow(StrictModel):
    before: NonNegativeInt
    after: NonNegativeInt


class VisitDefinition(StrictModel):
    code: Code
    name: Text
    kind: VisitKind
    day: int  # target day relative to enrolment (day 0 = enrolment date)
    window: DayWindow
    duration_minutes: PositiveInt
    primary_outcome: bool = False


# --- dosing -------------------------------------------------------------------------------------


class MinuteWindow(StrictModel):
    start: NonNegativeInt  # minutes after the initial dose
    end: PositiveInt

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"window start ({self.start}) must be before its end ({self.end})")
        return self


class SupplementalDose(StrictModel):
    fraction_of_initial: FiniteFloat = Field(gt=0, le=1)
    window_minutes: MinuteWindow
    optional: bool = True


class DosingSessionDefinition(StrictModel):
    visit: Code
    initial_mg: list[PositiveFloat] = Field(min_length=1)  # first = intended, rest = allowed
    supplemental: SupplementalDose | None  # required: write `null` for "no supplemental dose"
    max_total_mg: PositiveFloat

    @field_validator("initial_mg")
    @classmethod
    def _unique_amounts(cls, amounts: list[float]) -> list[float]:
        unique(amounts, "initial amount")
        return amounts

    @field_validator("max_total_mg")
    @classmethod
    def _max_covers_largest_course(cls, max_total_mg: float, info: ValidationInfo) -> float:
        initial = info.data.get("initial_mg")
        if not initial or "supplemental" not in info.data:
            return max_total_mg
        largest = max(initial)
        supplemental: SupplementalDose | None = info.data["supplemental"]
        needed = largest * (1 + supplemental.fraction_of_initial) if supplemental else largest
        if max_total_mg < needed - 1e-9:
            course = f"{largest:g} mg initial" + (
                f" + {largest * supplemental.fraction_of_initial:g} mg supplemental"
                if supplemental
                else ""
            )
            raise ValueError(
                f"max_total_mg {max_total_mg:g} is below the largest course the protocol allows "
                f"({course} = {needed:g} mg)"
            )
        return max_total_mg

    def supplemental_mg(self, initial_mg: float) -> float | None:
        """The supplemental amount that goes with ``initial_mg``, or None if there is none."""
        if self.supplemental is None:
            return None
        return initial_mg * self.supplemental.fraction_of_initial


class Dosing(StrictModel):
    sessions: list[DosingSessionDefinition] = Field(min_length=1)


# --- vital signs schedule -----------------------------------------------------------------------


class BaselineRequirement(StrictModel):
    measures: MeasureList
    within_minutes_before_dose: PositiveInt


class MeasurementInterval(StrictModel):
    measures: MeasureList
    from_minute: NonNegativeInt  # minutes after the initial dose
    to_minute: PositiveInt
    every_minutes: PositiveInt
    grace_minutes: NonNegativeInt

    @field_validator("to_minute")
    @classmethod
    def _after_start(cls, to_minute: int, info: ValidationInfo) -> int:
        from_minute = info.data.get("from_minute")
        if from_minute is not None and to_minute <= from_minute:
            raise ValueError(f"to_minute ({to_minute}) must be after from_minute ({from_minute})")
        return to_minute

    @field_validator("grace_minutes")
    @classmethod
    def _grace_shorter_than_interval(cls, grace: int, info: ValidationInfo) -> int:
        every = info.data.get("every_minutes")
        if every is not None and grace >= every:
            raise ValueError(
                f"grace_minutes ({grace}) must be shorter than every_minutes ({every}), "
                "or a reading would be overdue only after the next one is due"
            )
        return grace


class VitalsSchedule(StrictModel):
    baseline: BaselineRequirement
    intervals: list[MeasurementInterval] = Field(min_length=1)

    def scheduled_measures(self) -> set[str]:
        return {code for interval in self.intervals for code in interval.measures}


# --- alerting -----------------------------------------------------------------------------------


class Alerting(StrictModel):
    acknowledge_within_minutes: dict[Literal["critical", "warning"], PositiveInt]
    escalation: list[Literal["site_clinician", "medical_monitor"]] = Field(min_length=1)
    sae_report_within_hours: PositiveInt  # investigator to sponsor; 24 by sponsor convention

    @field_validator("acknowledge_within_minutes")
    @classmethod
    def _both_severities(cls, minutes: dict[str, int]) -> dict[str, int]:
        missing = [severity for severity in ("critical", "warning") if severity not in minutes]
        if missing:
            raise ValueError(f"give an acknowledgement deadline for: {', '.join(missing)}")
        if minutes["critical"] > minutes["warning"]:
            raise ValueError(
                f"critical alerts ({minutes['critical']} min) may not wait longer for "
                f"acknowledgement than warnings ({minutes['warning']} min)"
            )
        return minutes

    @field_validator("escalation")
    @classmethod
    def _unique_roles(cls, roles: list[str]) -> list[str]:
        unique(roles, "escalation role")
        return roles


# --- the protocol -------------------------------------------------------------------------------


class Protocol(StrictModel):
    protocol: ProtocolInfo
    arms: list[Arm] = Field(min_length=1)
    randomisation: Randomisation | None = None
    visits: list[VisitDefinition] = Field(min_length=1)
    dosing: Dosing
    vitals_schedule: VitalsSchedule
    alerting: Alerting
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_cross_references(self, info: ValidationInfo) -> Self:
        problems = find_cross_reference_problems(self)
        if not problems:
            return self
        collector = info.context.get(CROSS_REFERENCE_COLLECTOR) if info.context else None
        if isinstance(collector, list):
            collector.extend(problems)
            return self
        raise ValueError("; ".join(str(problem) for problem in problems))

    def visit(self, code: str) -> VisitDefinition:
        for visit in self.visits:
            if visit.code == code:
                return visit
        raise KeyError(code)

    def dosing_for_visit(self, code: str) -> DosingSessionDefinition | None:
        return next((s for s in self.dosing.sessions if s.visit == code), None)

    def arm_codes(self) -> list[str]:
        return [arm.code for arm in self.arms]

    def rule(self, rule_id: str) -> AnyRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @overload
    def rules_of_kind(self, kind: Literal["threshold"]) -> list[ThresholdRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["sustained"]) -> list[SustainedRule]: ...
    @overload
    def rules_of_kind(
        self, kind: Literal["change_from_baseline"]
    ) -> list[ChangeFromBaselineRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["rate_of_change"]) -> list[RateOfChangeRule]: ...
    @overload
    def rules_of_kind(
        self, kind: Literal["overdue_measurement"]
    ) -> list[OverdueMeasurementRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["composite_score"]) -> list[CompositeScoreRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["dose_gate"]) -> list[DoseGateRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["adverse_event"]) -> list[AdverseEventRule]: ...
    @overload
    def rules_of_kind(self, kind: Literal["cssrs"]) -> list[CssrsRule]: ...
    @overload
    def rules_of_kind(self, kind: str) -> Sequence[AnyRule]: ...
    def rules_of_kind(self, kind: str) -> Sequence[AnyRule]:
        """The rules of one kind, in file order; an unknown kind is a ValueError, not []."""
        if kind not in get_args(RuleKind):
            raise ValueError(
                f"unknown rule kind {kind!r}; kinds are {', '.join(get_args(RuleKind))}"
            )
        return [rule for rule in self.rules if rule.kind == kind]


# --- cross-reference checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class CrossReferenceProblem:
    loc: Loc  # pydantic-style location: field names and list indexes
    message: str

    @property
    def path(self) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.loc).lstrip(".")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Problems = Iterator[CrossReferenceProblem]


def find_cross_reference_problems(protocol: Protocol) -> list[CrossReferenceProblem]:
    """Problems that span several parts of a protocol, each located at the node to fix."""
    return [
        *_duplicates(
            ((("arms", i, "code"), a.code) for i, a in enumerate(protocol.arms)), "arm code"
        ),
        *_duplicates(
            ((("visits", i, "code"), v.code) for i, v in enumerate(protocol.visits)), "visit code"
        ),
        *_duplicates(((("rules", i, "id"), r.id) for i, r in enumerate(protocol.rules)), "rule id"),
        *_randomisation_problems(protocol),
        *_visit_problems(protocol),
        *_dosing_problems(protocol),
        *_schedule_problems(protocol),
        *_rule_problems(protocol),
    ]


def _duplicates(items: Iterable[tuple[Loc, str]], what: str) -> Problems:
    first: dict[str, CrossReferenceProblem] = {}
    for loc, value in items:
        if value in first:
            yield CrossReferenceProblem(
                loc, f"duplicate {what} {value!r} (also {first[value].path})"
            )
        else:
            first[value] = CrossReferenceProblem(loc, "")


def _randomisation_problems(protocol: Protocol) -> Problems:
    scheme, arms = protocol.randomisation, len(protocol.arms)
    if scheme is None and arms > 1:
        yield CrossReferenceProblem(
            ("randomisation",), "a protocol with several arms needs randomisation"
        )
    if scheme is not None and len(scheme.ratio) != arms:
        yield CrossReferenceProblem(
            ("randomisation", "ratio"),
            f"ratio has {len(scheme.ratio)} entries but there are {arms} arms; "
            "give one entry per arm",
        )


def _visit_problems(protocol: Protocol) -> Problems:
    visits = protocol.visits
    for i in range(1, len(visits)):
        before, visit = visits[i - 1], visits[i]
        if visit.day < before.day:
            yield CrossReferenceProblem(
                ("visits", i, "day"),
                f"visit {visit.code} (day {visit.day}) is listed after {before.code} "
                f"(day {before.day}); list visits in day order",
            )
    primary = [i for i, visit in enumerate(visits) if visit.primary_outcome]
    if not primary:
        yield CrossReferenceProblem(("visits",), "no visit is marked primary_outcome: true")
    for i in primary[1:]:
        yield CrossReferenceProblem(
            ("visits", i, "primary_outcome"),
            f"only one visit may be the primary outcome; {visits[primary[0]].code} already is",
        )


def _dosing_problems(protocol: Protocol) -> Problems:
    visits: dict[str, VisitDefinition] = {}
    for each in protocol.visits:
        visits.setdefault(each.code, each)  # a duplicate code is reported on its own
    dosed: dict[str, int] = {}
    for i, session in enumerate(protocol.dosing.sessions):
        loc: Loc = ("dosing", "sessions", i, "visit")
        visit = visits.get(session.visit)
        if visit is None:
            yield CrossReferenceProblem(
                loc, f"unknown visit {session.visit!r}; visits are {', '.join(visits)}"
            )
            continue
        if visit.kind != "experimental":
            yield CrossReferenceProblem(
                loc,
                f"visit {visit.code!r} is of kind {visit.kind!r}; dosing sessions must "
                "reference an experimental visit",
            )
        if visit.code in dosed:
            yield CrossReferenceProblem(
                loc,
                f"visit {visit.code!r} already has a dosing entry (sessions[{dosed[visit.code]}])",
            )
        dosed.setdefault(visit.code, i)
        supplemental = session.supplemental
        if supplemental and supplemental.window_minutes.end > visit.duration_minutes:
            yield CrossReferenceProblem(
                ("dosing", "sessions", i, "supplemental", "window_minutes", "end"),
                f"the supplemental window ends at minute {supplemental.window_minutes.end}, "
                f"after the whole {visit.duration_minutes}-minute visit {visit.code}",
            )
    for i, visit in enumerate(protocol.visits):
        if visit.kind == "experimental" and visit.code not in dosed:
            yield CrossReferenceProblem(
                ("visits", i, "code"),
                f"experimental visit {visit.code!r} has no entry in dosing.sessions",
            )


def _schedule_problems(protocol: Protocol) -> Problems:
    """One cadence per measure at any minute: intervals sharing a measure may meet, not overlap."""
    intervals = protocol.vitals_schedule.intervals
    for i, interval in enumerate(intervals):
        for j, other in enumerate(intervals[:i]):
            shared = [code for code in interval.measures if code in other.measures]
            if (
                shared
                and interval.from_minute < other.to_minute
                and other.from_minute < interval.to_minute
            ):
                yield CrossReferenceProblem(
                    ("vitals_schedule", "intervals", i, "from_minute"),
                    f"overlaps intervals[{j}] for {', '.join(shared)}; give each measure one "
                    "cadence at a time",
                )


def _rule_problems(protocol: Protocol) -> Problems:
    scheduled = protocol.vitals_schedule.scheduled_measures()
    has_supplemental = any(s.supplemental is not None for s in protocol.dosing.sessions)
    for i, rule in enumerate(protocol.rules):
        if isinstance(rule, OverdueMeasurementRule):
            for j, code in enumerate(rule.measures):
                if code not in scheduled:
                    yield CrossReferenceProblem(
                        ("rules", i, "measures", j),
                        f"{code} is not in any vitals_schedule interval, so it can never be "
                        f"overdue; scheduled: {', '.join(sorted(scheduled))}",
                    )
        elif isinstance(rule, DoseGateRule) and not has_supplemental:
            yield CrossReferenceProblem(
                ("rules", i, "dose"),
                "a supplemental dose gate, but no dosing session allows a supplemental dose",
            )
