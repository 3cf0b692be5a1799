"""The study-design sections of a protocol file: its identity, the trial's summary facts, arms
and randomisation, visits, dosing, vital-signs schedule, reference ranges and alerting.
``app.protocols.schema`` re-exports them, beside the ``Protocol`` model and the checks that span
sections.
"""

from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.clinical.measures import MEASURES
from app.protocols.rule_schema import (
    Code,
    MeasureCode,
    MeasureList,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Slug,
    StrictModel,
    Text,
    unique,
)

VisitKind = Literal[
    "screening", "preparatory", "experimental", "integration", "outcome", "follow_up"
]


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


# CDISC controlled terms of the Trial Phase Response codelist (TPHASE, NCI C66737) a protocol may
# name, with each term's NCI code (TSVALCD).
TRIAL_PHASES = {
    "PHASE I TRIAL": "C15600",
    "PHASE I/II TRIAL": "C15693",
    "PHASE II TRIAL": "C15601",
    "PHASE II/III TRIAL": "C15694",
    "PHASE III TRIAL": "C15602",
    "PHASE IV TRIAL": "C15603",
    "NOT APPLICABLE": "C48660",
}
SnomedCode = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{5,17}$")]


class Indication(StrictModel):
    """The disease or condition the trial treats (TS INDIC), with its SNOMED CT concept id when
    the protocol's author is sure of it."""

    text: Text
    snomed_ct: SnomedCode | None = None
    source: Text


class TrialPhase(StrictModel):
    value: str  # a CDISC TPHASE term (TRIAL_PHASES)
    source: Text

    @field_validator("value")
    @classmethod
    def _a_cdisc_phase(cls, value: str) -> str:
        if value not in TRIAL_PHASES:
            raise ValueError(
                f"unknown trial phase {value!r}; give a CDISC TPHASE term: "
                + ", ".join(TRIAL_PHASES)
            )
        return value


class Sponsor(StrictModel):
    name: Text
    source: Text


class PlannedSubjects(StrictModel):
    value: PositiveInt
    source: Text


class TrialFacts(StrictModel):
    """Facts of the trial the SDTM trial summary (TS) reports and the rest of the protocol does
    not hold, each with where it comes from. Every one is optional: a missing one is a TS row
    without a value, listed as a conformance gap of the export."""

    indication: Indication | None = None
    phase: TrialPhase | None = None
    sponsor: Sponsor | None = None
    planned_subjects: PlannedSubjects | None = None


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
    therapists_required: Literal[1, 2] = Field(
        default=2,
        description="therapists who must be attested present before the initial dose; a "
        "co-therapist pair (2) unless the protocol says one is enough",
    )


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
    # A reading measured up to this long after the session ended still belongs to it (the
    # observation after the last dose's effects wear off); later ones are refused. Not a *late*
    # reading (one received long after it was measured): that is a different clock.
    readings_accepted_after_end_minutes: NonNegativeInt = 60
    # A reading received more than this long after it was measured is late: its findings say
    # how late and their acknowledgement deadline counts from its receipt (docs/alerts.md).
    late_after_minutes: NonNegativeInt = 15

    def scheduled_measures(self) -> set[str]:
        return {code for interval in self.intervals for code in interval.measures}


# --- reference ranges ---------------------------------------------------------------------------


class ReferenceRange(StrictModel):
    """The normal range of one vital-sign test in adults, with where it comes from. Not an alert
    threshold (those are rules): the SDTM export's VSORNRLO/VSORNRHI, VSSTNRLO/VSSTNRHI and
    VSNRIND. Both limits are normal (a value equal to one is NORMAL)."""

    measure: MeasureCode
    low: FiniteFloat
    high: FiniteFloat
    unit: str
    source: Text

    @model_validator(mode="after")
    def _a_range_in_the_measures_unit(self) -> Self:
        measure = MEASURES[self.measure]
        if self.unit != measure.unit:
            raise ValueError(
                f"{self.measure} ranges are in {measure.unit}, its SDTM unit, not {self.unit!r}"
            )
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.low < measure.possible_min or self.high > measure.possible_max:
            raise ValueError(
                f"a {self.measure} range must lie within what can be measured "
                f"({measure.possible_min:g}-{measure.possible_max:g} {measure.unit})"
            )
        return self


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
