"""What the rules engine returns: findings that explain themselves.

A :class:`Finding` says which rule of which protocol version became true, when (``at``), how
severe it is, in a sentence a clinician can read, with the values it used (``observed``), what
they were compared with (``thresholds``) and the ids of the readings, doses or events behind it
(``evidence``). ``key`` (a :class:`DedupKey`: the session, the rule, the record and the part it is
about) names the problem an alert tracks, so the alerts service updates a still-open alert instead
of opening a second one; ``occurrence_key`` names this one occurrence.

A finding whose evidence includes a *late* reading (received more than the protocol's
``vitals_schedule.late_after_minutes`` after it was measured) carries :class:`Lateness` and says
so in its message; lateness is not part of the occurrence key. ``escalate_at_once``: the rule (or
its score level) asks that a critical alert of this finding go to the medical monitor at once.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType

from app.protocols.schema import AnyRule, Protocol, RuleKind, Severity
from app.rules import wording
from app.rules.snapshot import Reading, SessionSnapshot

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
class Lateness:
    """The late reading behind a finding: the one received last among its late evidence."""

    reading_id: str
    measured_at: datetime
    received_at: datetime

    @property
    def minutes_late(self) -> float:
        return (self.received_at - self.measured_at) / timedelta(minutes=1)

    def as_dict(self) -> dict[str, object]:
        return {
            "reading_id": self.reading_id,
            "measured_at": self.measured_at.isoformat(),
            "received_at": self.received_at.isoformat(),
            "minutes_late": round(self.minutes_late, 1),
        }


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
    late: Lateness | None = None
    escalate_at_once: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed", MappingProxyType(dict(self.observed)))

    @property
    def dedup_key(self) -> str:
        return str(self.key)

    @property
    def learnt_at(self) -> datetime:
        """When the server could first know of it: ``at``, or a late reading's receipt."""
        return self.at if self.late is None else max(self.at, self.late.received_at)

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
            "late": None if self.late is None else self.late.as_dict(),
            "escalate_at_once": self.escalate_at_once,
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

    @property
    def zone(self) -> tzinfo:
        """The site's time zone: times in messages are on its wall clock."""
        return self.snapshot.timezone

    def moment(self, when: datetime, *, finding_at: datetime | None = None) -> str:
        """'10:32 (UTC+01:00, T+92 min)'; relative to the initial dose only if it was given by
        the finding's own time, so a finding never reads differently once later data arrive."""
        initial = self.snapshot.initial_dose()
        known = finding_at or when
        if initial is None or initial.administered_at > known:
            return wording.clock(when, self.zone)
        return wording.moment(when, self.snapshot.minutes_after_dose(when), self.zone)

    def lateness(self, evidence: Sequence[str]) -> Lateness | None:
        """The late reading among ``evidence`` received last, if any is late."""
        tolerance = self.protocol.vitals_schedule.late_after_minutes
        late: list[Reading] = []
        for each in evidence:
            reading = self.snapshot.reading(each)
            if reading is not None and reading.minutes_late() > tolerance:
                late.append(reading)
        if not late:
            return None
        last = max(late, key=lambda r: (r.received_at, r.measured_at, r.id))
        assert last.received_at is not None
        return Lateness(last.id, last.measured_at, last.received_at)

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
        escalate_at_once: bool | None = None,
    ) -> Finding:
        """A finding of this rule; ``record_id`` and ``part`` narrow its :class:`DedupKey`. A
        late reading among the evidence is named at the end of the message. ``escalate_at_once``
        defaults to the rule's option, for its critical findings."""
        info = self.protocol.protocol
        severity = severity or self.rule.severity
        if escalate_at_once is None:
            escalate_at_once = self.rule.escalate_at_once and severity == "critical"
        late = self.lateness(evidence)
        if late is not None:
            said = wording.lateness(late.measured_at, late.received_at, self.zone)
            message = f"{message} Late reading: {said}."
        return Finding(
            rule_id=self.rule.id,
            protocol_id=info.id,
            protocol_version=info.version,
            kind=self.rule.kind,
            severity=severity,
            at=at,
            title=self.rule.title,
            message=message,
            key=DedupKey(self.snapshot.dosing_session_id, self.rule.id, record_id, part),
            observed=observed,
            thresholds=tuple(thresholds),
            evidence=tuple(evidence),
            variant=variant,
            late=late,
            escalate_at_once=escalate_at_once,
        )
