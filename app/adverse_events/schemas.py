import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from app.schemas import AwareDatetime, ReadModel, Reason, WriteModel
from app.signatures.schemas import SignatureRead
from app.vocabulary import RecordStatus

DEFAULT_CTCAE_VERSION = "5.0"


class Severity(StrEnum):
    """Intensity of the event; not the same as seriousness."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class SeriousnessCriterion(StrEnum):
    """ICH E2A criteria; any one makes the event a serious adverse event (SAE)."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    IMPORTANT_MEDICAL_EVENT = "important_medical_event"


class Relatedness(StrEnum):
    NOT_RELATED = "not_related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"


class Expectedness(StrEnum):
    EXPECTED = "expected"
    UNEXPECTED = "unexpected"


class ActionTaken(StrEnum):
    """Action taken with the study drug (SDTM AEACN)."""

    DOSE_NOT_CHANGED = "dose_not_changed"
    DOSE_WITHHELD = "dose_withheld"
    DRUG_WITHDRAWN = "drug_withdrawn"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


VerbatimTerm = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
]
CtcaeGrade = Annotated[int, Field(strict=True, ge=1, le=5)]
CtcaeVersion = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\d{1,3}\.\d{1,3}$")
]


def _canonical(criteria: list[SeriousnessCriterion]) -> list[SeriousnessCriterion]:
    """Each criterion once, in the order of the list above (stable audit diffs)."""
    return [criterion for criterion in SeriousnessCriterion if criterion in criteria]


class AdverseEventCreate(WriteModel):
    verbatim_term: VerbatimTerm = Field(description="the event as reported, before coding")
    onset_at: AwareDatetime
    end_at: AwareDatetime | None = Field(default=None, description="empty while ongoing")
    dosing_session_id: uuid.UUID | None = None
    severity: Severity
    ctcae_grade: CtcaeGrade | None = None
    ctcae_version: CtcaeVersion | None = Field(
        default=DEFAULT_CTCAE_VERSION, description="required with a grade; ignored without one"
    )
    seriousness_criteria: list[SeriousnessCriterion] = Field(
        default_factory=list, description="empty: not serious"
    )
    relatedness: Relatedness
    expectedness: Expectedness
    action_taken: ActionTaken
    outcome: Outcome
    site_aware_at: AwareDatetime | None = Field(
        default=None, description="when the site learned of the event; default: now"
    )
    sponsor_reported_at: AwareDatetime | None = None

    _criteria = field_validator("seriousness_criteria")(_canonical)


NOT_NULLABLE = (
    "verbatim_term",
    "onset_at",
    "severity",
    "seriousness_criteria",
    "relatedness",
    "expectedness",
    "action_taken",
    "outcome",
    "site_aware_at",
)


class AdverseEventUpdate(WriteModel):
    """A correction: only the fields given change; the reason goes to the audit trail."""

    verbatim_term: VerbatimTerm | None = None
    onset_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    dosing_session_id: uuid.UUID | None = None
    severity: Severity | None = None
    ctcae_grade: CtcaeGrade | None = None
    ctcae_version: CtcaeVersion | None = None
    seriousness_criteria: list[SeriousnessCriterion] | None = None
    relatedness: Relatedness | None = None
    expectedness: Expectedness | None = None
    action_taken: ActionTaken | None = None
    outcome: Outcome | None = None
    site_aware_at: AwareDatetime | None = None
    sponsor_reported_at: AwareDatetime | None = None
    reason: Reason

    @field_validator(*NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; give the corrected value")
        return value

    _criteria = field_validator("seriousness_criteria")(_canonical)

    @model_validator(mode="after")
    def _something_to_correct(self) -> "AdverseEventUpdate":
        if not self.model_fields_set - {"reason"}:
            raise ValueError("give at least one field to correct besides the reason")
        return self


# --- MedDRA coding (app/adverse_events/coding.py) ----------------------------------------------

MeddraCode = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]{7}$"),
    Field(description="an 8-digit MedDRA code, as text", examples=["10019211"]),
]
MeddraTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MeddraVersion = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]?\.[01]$"),
    Field(description="MedDRA release: major version and .0 (March) or .1 (September)"),
]


class MeddraTermCode(WriteModel):
    term: MeddraTerm
    code: MeddraCode


class MeddraCoding(WriteModel):
    """The whole MedDRA hierarchy of one event, as the coder's licensed dictionary gives it: a
    partial coding is refused (every level is required)."""

    meddra_version: MeddraVersion = Field(examples=["27.1"])
    llt: MeddraTermCode = Field(description="lowest level term")
    pt: MeddraTermCode = Field(description="preferred term (AEDECOD)")
    hlt: MeddraTermCode = Field(description="high level term")
    hlgt: MeddraTermCode = Field(description="high level group term")
    soc: MeddraTermCode = Field(description="primary system organ class")
    reason: Reason

    @model_validator(mode="after")
    def _one_code_per_term(self) -> "MeddraCoding":
        """MedDRA codes are unique across the levels, but an LLT may be its own PT (same code,
        same term)."""
        levels = {"pt": self.pt, "hlt": self.hlt, "hlgt": self.hlgt, "soc": self.soc}
        seen: dict[str, str] = {}
        for level, named in levels.items():
            if named.code in seen:
                raise ValueError(f"{level} has the code of {seen[named.code]}: {named.code}")
            seen[named.code] = level
        if self.llt.code == self.pt.code and self.llt.term != self.pt.term:
            raise ValueError("an LLT with its PT's code is that PT: give the same term")
        if self.llt.code in seen and self.llt.code != self.pt.code:
            raise ValueError(f"llt has the code of {seen[self.llt.code]}: {self.llt.code}")
        return self


class MeddraCodingRead(ReadModel):
    meddra_version: str
    llt: MeddraTermCode
    pt: MeddraTermCode
    hlt: MeddraTermCode
    hlgt: MeddraTermCode
    soc: MeddraTermCode


class AdverseEventRead(ReadModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    dosing_session_id: uuid.UUID | None
    verbatim_term: str
    onset_at: datetime
    end_at: datetime | None
    ongoing: bool
    severity: Severity
    ctcae_grade: int | None
    ctcae_version: str | None
    seriousness_criteria: list[SeriousnessCriterion]
    serious: bool = Field(description="derived: any seriousness criterion is met")
    relatedness: Relatedness
    expectedness: Expectedness
    action_taken: ActionTaken
    outcome: Outcome
    site_aware_at: datetime
    sponsor_reported_at: datetime | None
    sponsor_report_due_at: datetime | None = Field(
        description="serious events only: site_aware_at + the protocol's reporting deadline "
        "(24 h by sponsor convention)"
    )
    sponsor_report_overdue: bool | None = Field(
        description="serious events only: not yet reported to the sponsor and past due"
    )
    record_status: RecordStatus
    error_reason: str | None
    created_at: datetime
    updated_at: datetime
    signatures: list[SignatureRead] = Field(
        description="every e-signature of the record, voided ones included, oldest first"
    )
    coding: MeddraCodingRead | None = Field(
        default=None, description="MedDRA coding; empty while the event is uncoded"
    )
