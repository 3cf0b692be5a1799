"""The read shape of a replay: the two protocol versions, the target's findings and how they
compare with the findings of the version the session ran under. Built from the engine's
findings, never from ORM rows, so the API contract does not follow the tables."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from app.protocols.rule_schema import Severity

Observed = float | int | str | bool | None


class ProtocolVersionRef(BaseModel):
    """One stored protocol version, named every way a reader may know it."""

    id: uuid.UUID
    protocol_id: str = Field(description="The protocol's id (protocol.id in its file)")
    version_label: str = Field(description="protocol.version in the file, e.g. 1.0")
    sequence: int = Field(description="Load order among the versions of this protocol (1, 2, ..)")
    sha256: str


class Presence(StrEnum):
    """Where a finding occurs: only under the target, only under the session's own version,
    or under both (same rule id, same moment, same evidence)."""

    TARGET_ONLY = "target_only"
    BASELINE_ONLY = "baseline_only"
    BOTH = "both"


class ReplayFinding(BaseModel):
    """One finding of the engine, as the replay reports it."""

    at: datetime = Field(description="When the finding became true (UTC)")
    minutes_after_dose: float | None = Field(
        description="Minutes from the initial dose to `at`; null when no initial dose had been "
        "given by then (the finding's own message then names no T+ either)"
    )
    severity: Severity
    informational: bool = Field(description="True for info findings, which never open an alert")
    rule_id: str
    kind: str
    variant: str | None
    title: str
    message: str
    evidence: list[str] = Field(description="Ids of the readings, doses, events, screens used")
    thresholds: list[str]
    observed: dict[str, Observed]
    occurrence_key: str = Field(description="dedup_key@at#evidence: what the comparison matches")


class MatchedFinding(ReplayFinding):
    """A finding under both versions, shown as the target raises it; ``changed`` names what the
    session's own version said differently (severity, title, message, thresholds, kind)."""

    changed: list[str]
    baseline_severity: Severity
    baseline_message: str


class ReplayComparison(BaseModel):
    only_target: list[ReplayFinding] = Field(
        description="Findings the target raises that the session's own version did not"
    )
    only_baseline: list[ReplayFinding] = Field(
        description="Findings of the session's own version that the target would not raise"
    )
    both: list[MatchedFinding]


class ReplaySummary(BaseModel):
    target_findings: int
    baseline_findings: int
    only_target: int
    only_baseline: int
    both: int
    changed: int = Field(description="Of `both`, those whose severity or wording differ")


class ReplayReport(BaseModel):
    dosing_session_id: uuid.UUID
    visit_code: str
    started_at: datetime | None
    ended_at: datetime
    initial_dose_at: datetime | None
    as_of: datetime = Field(
        description="The clock the replay ran to (clock-driven findings such as reporting "
        "deadlines after the session are judged as of this time)"
    )
    min_severity: Severity | None
    target: ProtocolVersionRef
    baseline: ProtocolVersionRef = Field(description="The version the session ran under")
    same_version: bool
    findings: list[ReplayFinding] = Field(description="Every finding of the target, sorted")
    comparison: ReplayComparison
    summary: ReplaySummary
