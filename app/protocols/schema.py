"""The protocol file format: pydantic models for ``protocols/*.yaml``.

A protocol is validated data. Every model forbids unknown keys and is strict (no ``"160"`` for
160, no ``yes`` for true), so a typo or a wrong type is a load error, never a silent default.
The rules section lives in ``rule_schema`` and the study-design sections in ``study_schema``;
both are re-exported here. Checks that need more than one part of a protocol (duplicate ids, a
dosing entry that names an unknown visit, a measure that is never scheduled) are in
:func:`find_cross_reference_problems`; the loader turns each problem into an issue with the path
and line of the offending node. ``docs/protocol-format.md`` is the format reference.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Self, get_args, overload

from pydantic import Field, ValidationInfo, model_validator

from app.protocols.rule_schema import (
    SEVERITY_ORDER,
    AdverseEventMatch,
    AdverseEventRule,
    AnyRule,
    ChangeFromBaselineRule,
    CompositeScoreRule,
    Condition,
    ConditionGroup,
    CssrsRule,
    Direction,
    DoseGateRule,
    MeasureCode,
    OverdueMeasurementRule,
    RateOfChangeRule,
    Rule,
    RuleKind,
    ScoreLevel,
    Severity,
    StrictModel,
    SustainedRule,
    ThresholdRule,
)
from app.protocols.study_schema import (
    TRIAL_PHASES,
    Alerting,
    Arm,
    BaselineRequirement,
    DayWindow,
    Dosing,
    DosingSessionDefinition,
    DrugInfo,
    Indication,
    MeasurementInterval,
    MinuteWindow,
    PlannedSubjects,
    ProtocolInfo,
    Randomisation,
    ReferenceRange,
    Sponsor,
    SupplementalDose,
    TrialFacts,
    TrialPhase,
    VisitDefinition,
    VisitKind,
    VitalsSchedule,
)

__all__ = [
    "CROSS_REFERENCE_COLLECTOR",
    "SEVERITY_ORDER",
    "TRIAL_PHASES",
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
    "Indication",
    "Loc",
    "MeasureCode",
    "MeasurementInterval",
    "MinuteWindow",
    "OverdueMeasurementRule",
    "PlannedSubjects",
    "Protocol",
    "ProtocolInfo",
    "Randomisation",
    "RateOfChangeRule",
    "ReferenceRange",
    "Rule",
    "RuleKind",
    "ScoreLevel",
    "Severity",
    "Sponsor",
    "SupplementalDose",
    "SustainedRule",
    "ThresholdRule",
    "TrialFacts",
    "TrialPhase",
    "VisitDefinition",
    "VisitKind",
    "VitalsSchedule",
    "find_cross_reference_problems",
]

Loc = tuple[str | int, ...]

# Put a list here in the validation context to receive cross-reference problems instead of a
# single ValueError (the loader does, to report each problem at its own path and line).
CROSS_REFERENCE_COLLECTOR = "vigil.protocols.cross_reference_problems"


# --- the protocol -------------------------------------------------------------------------------


class Protocol(StrictModel):
    protocol: ProtocolInfo
    # The trial's summary facts for the SDTM TS dataset: optional, so a version stored before
    # the section existed still reads.
    trial: TrialFacts | None = None
    arms: list[Arm] = Field(min_length=1)
    randomisation: Randomisation | None = None
    visits: list[VisitDefinition] = Field(min_length=1)
    dosing: Dosing
    vitals_schedule: VitalsSchedule
    # Normal ranges of the vital signs (not alert thresholds): optional, so a version stored
    # before the section existed still reads; one entry per measure at most.
    reference_ranges: list[ReferenceRange] = Field(default_factory=list)
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

    def reference_range(self, measure: str) -> ReferenceRange | None:
        return next((r for r in self.reference_ranges if r.measure == measure), None)

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
        *_duplicates(
            (
                (("reference_ranges", i, "measure"), r.measure)
                for i, r in enumerate(protocol.reference_ranges)
            ),
            "reference range of",
        ),
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
