"""What the rules engine returns: findings that explain themselves.

A :class:`Finding` says which rule of which protocol version became true, when (``at``), how
severe it is, in a sentence a clinician can read, with the values it used (``observed``), what
they were compared with (``thresholds``) and the ids of the readings, doses or events behind it
(``evidence``). ``key`` (a :class:`DedupKey`: the session, the rule, the record and the part it is
about) names the problem an alert tracks, so the alerts service updates a still-open alert instead
of opening a second one; ``occurrence_key`` names this one occurrence.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from app.protocols.schema import AnyRule, Protocol, RuleKind, Severity
from app.rules import wording
from app.rules.snapshot import SessionSnapshot

Observed = float | int | str | bool | None


@dataclass(frozen=True)
class DedupKey:
    """The problem an alert tracks: a rule in a session, about one record when the rule judges
    records (an adverse event, a C-SSRS screen, a supplemental dose), and a part of it
    (``reporting``: an event's reporting clock; ``no-baseline``). Callers read its fields; its
    text (``session:rule[:record][:part]``) is what alerts store and compare."""

    dosing_session_id: str
    rule_id: str
    record_id: str | None = None
    part: str | None = None

    def __str__(self) -> str:
        parts = (self.dosing_session_id, self.rule_id, self.record_id, self.part)
        return ":".join(part for part in parts if part is not None)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    protocol_id: str
    protocol_version: str
    kind: RuleKind
    severity: Severity
    at: datetime  # when it became true: a reading's measured_at, a deadline, an event's time
    title: str  # the rule's title
    message: str  # what happened, with values and times
    key: DedupKey
    observed: Mapping[str, Observed] = field(default_factory=dict, hash=False)
    thresholds: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # ids of the readings, doses, events and screens used
    variant: str | None = None  # e.g. "no-baseline", "deadline-passed"; None for the plain rule

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed", MappingProxyType(dict(self.observed)))

    @property
    def dedup_key(self) -> str:
        return str(self.key)

    @property
    def occurrence_key(self) -> str:
        """One occurrence: the same problem (dedup_key) at the same moment from the same data."""
        return f"{self.dedup_key}@{self.at.isoformat()}#{','.join(self.evidence)}"

    def sort_key(self) -> tuple[datetime, str, str, tuple[str, ...], str, str]:
        return (
            self.at,
            self.rule_id,
            self.dedup_key,
            self.evidence,
            self.variant or "",
            self.message,
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready shape (times in ISO 8601) for the alerts service and the API."""
        return {
            "rule_id": self.rule_id,
            "protocol_id": self.protocol_id,
            "protocol_version": self.protocol_version,
            "kind": self.kind,
            "severity": self.severity,
            "at": self.at.isoformat(),
            "title": self.title,
            "message": self.message,
            "dedup_key": self.dedup_key,
            "observed": dict(self.observed),
            "thresholds": list(self.thresholds),
            "evidence": list(self.evidence),
            "variant": self.variant,
        }


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


@dataclass(frozen=True)
class RuleContext:
    """One rule being evaluated against one snapshot; builds its findings."""

    protocol: Protocol
    rule: AnyRule
    snapshot: SessionSnapshot
    # Only findings at or after ``since`` are wanted (None: all). Evaluators may skip the work of
    # earlier ones (``settled``); the engine drops any that are still made.
    since: datetime | None = None

    def settled(self, at: datetime) -> bool:
        """A finding at ``at`` is not wanted: it is before ``since``."""
        return self.since is not None and at < self.since

    def moment(self, when: datetime, *, finding_at: datetime | None = None) -> str:
        """'10:32 UTC (T+92 min)'; relative to the initial dose only if it was given by the
        finding's own time, so a finding never reads differently once later data arrive."""
        initial = self.snapshot.initial_dose()
        known = finding_at or when
        if initial is None or initial.administered_at > known:
            return wording.clock(when)
        return wording.moment(when, self.snapshot.minutes_after_dose(when))

    def finding(
        self,
        *,
        at: datetime,
        message: str,
        observed: Mapping[str, Observed],
        thresholds: Sequence[str],
        evidence: Sequence[str],
        severity: Severity | None = None,
        variant: str | None = None,
        record_id: str | None = None,
        part: str | None = None,
    ) -> Finding:
        """A finding of this rule; ``record_id`` and ``part`` narrow its :class:`DedupKey`."""
        info = self.protocol.protocol
        return Finding(
            rule_id=self.rule.id,
            protocol_id=info.id,
            protocol_version=info.version,
            kind=self.rule.kind,
            severity=severity or self.rule.severity,
            at=at,
            title=self.rule.title,
            message=message,
            key=DedupKey(self.snapshot.dosing_session_id, self.rule.id, record_id, part),
            observed=observed,
            thresholds=tuple(thresholds),
            evidence=tuple(evidence),
            variant=variant,
        )
