"""Replay a finished dosing session against a protocol version, and compare it with the version
the session ran under, so an amendment can be judged on real sessions before it goes live.

Read-only for the trial: the snapshot is built from the stored records
(:func:`app.sessions.snapshot.snapshot_of`), the engine's :func:`app.rules.replay` is pure, and
nothing is persisted but one audit event per replay (action ``replay``, on the dosing session):
a replay reads a participant's clinical data, and 21 CFR Part 11 / ICH E6(R3) reviewers ask who
looked at what; the record names the two versions and the clock the replay ran to. No alert is
opened or updated: the alerts service is never called.
"""

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.recorder import record_event
from app.errors import Conflict, InvalidInput, NotFound
from app.models import DosingSession, ProtocolVersion
from app.protocols import service as protocols
from app.protocols.rule_schema import Severity
from app.replay.schemas import (
    MatchedFinding,
    ProtocolVersionRef,
    ReplayComparison,
    ReplayFinding,
    ReplayReport,
    ReplaySummary,
)
from app.rules import Finding, SessionSnapshot, replay
from app.sessions.snapshot import snapshot_of
from app.vocabulary import SEVERITY_ORDER

REPLAY_ACTION = "replay"  # the audit action of a replay
LATEST = "latest"
MIN_SHA256_PREFIX = 6
_HEX = re.compile(r"[0-9a-f]+")
# What may differ between two findings matched as the same occurrence.
_COMPARED = ("severity", "kind", "title", "message", "thresholds")


# --- which versions ------------------------------------------------------------------------------


def version_ref(version: ProtocolVersion) -> ProtocolVersionRef:
    return ProtocolVersionRef(
        id=version.id,
        protocol_id=version.protocol_key,
        version_label=version.version_label,
        sequence=version.sequence,
        sha256=version.sha256,
    )


def _describe(version: ProtocolVersion) -> str:
    return (
        f"{version.protocol_key} v{version.version_label} sequence {version.sequence} "
        f"sha256 {version.sha256[:12]} id {version.id}"
    )


def find_version(session: Session, dosing_session: DosingSession, ref: str) -> ProtocolVersion:
    """A protocol version named the ways `vigil protocol load` prints one: its id, a sha256
    prefix (at least 6 hex digits), its version label among the versions of the session's
    protocol, or ``latest`` (the session's protocol's last loaded version). A prefix may name
    several versions, and so may a label in a database loaded before ``store`` refused other
    content under a stored label: either is refused with the candidates rather than guessed."""
    ref = ref.strip()
    try:
        return protocols.get_version(session, uuid.UUID(ref))
    except ValueError:
        pass
    own = protocols.get_version(session, dosing_session.protocol_version_id)
    if ref == LATEST:
        return protocols.latest_version(session, own.protocol_key)
    found: dict[uuid.UUID, ProtocolVersion] = {}
    prefix = ref.lower()
    if len(prefix) >= MIN_SHA256_PREFIX and _HEX.fullmatch(prefix):
        stmt = select(ProtocolVersion).where(ProtocolVersion.sha256.startswith(prefix))
        found.update((v.id, v) for v in session.scalars(stmt))
    stmt = select(ProtocolVersion).where(
        ProtocolVersion.protocol_key == own.protocol_key, ProtocolVersion.version_label == ref
    )
    found.update((v.id, v) for v in session.scalars(stmt))
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        names = "; ".join(_describe(v) for v in sorted(found.values(), key=_sort_versions))
        raise InvalidInput(
            f"{ref!r} names {len(found)} protocol versions ({names}); give the id or a longer "
            f"sha256 prefix"
        )
    known = session.scalars(
        select(ProtocolVersion)
        .where(ProtocolVersion.protocol_key == own.protocol_key)
        .order_by(ProtocolVersion.sequence)
    )
    listed = "; ".join(_describe(v) for v in known)
    raise NotFound(
        f"no protocol version {ref!r}: give a version id, a sha256 prefix of at least "
        f"{MIN_SHA256_PREFIX} hex digits, a version label of protocol {own.protocol_key} or "
        f"{LATEST!r} (loaded: {listed})"
    )


def _sort_versions(version: ProtocolVersion) -> tuple[str, int]:
    return version.protocol_key, version.sequence


def _check_replayable(
    dosing_session: DosingSession, target: ProtocolVersion, baseline: ProtocolVersion
) -> None:
    if target.protocol_key != baseline.protocol_key:
        message = (
            f"protocol version {target.id} is a version of protocol {target.protocol_key!r}, "
            f"but dosing session {dosing_session.id} ran under protocol "
            f"{baseline.protocol_key!r}; a replay compares versions of the session's own protocol"
        )
        raise InvalidInput(message, errors=[{"field": "protocol_version_id", "message": message}])
    if dosing_session.ended_at is None:
        raise Conflict(
            f"dosing session {dosing_session.id} is {dosing_session.status}, not ended: only a "
            f"finished session can be replayed; end the session first"
        )


# --- the comparison -----------------------------------------------------------------------------


def _match_key(finding: Finding) -> tuple[str, str]:
    """What makes two findings of two versions "the same" occurrence: the occurrence key
    (``dedup_key@at#evidence``) and the variant.

    The occurrence key is context-free across versions of one protocol: its dedup key is
    built from the session id, the rule id and the ids of the events behind the finding (or a
    variant group), never from the protocol id or version. So it says exactly "the same rule,
    at the same moment, on the same readings/doses/events", which is what a reviewer means by
    "both versions raise this". It is also the key the alerts service remembers, so "both"
    means "the alerts would have been the same occurrences". Severity, wording and thresholds
    are deliberately left out: they are what an amendment changes, and a match whose wording
    or severity differs is reported as ``changed`` rather than as one finding lost and one
    gained. The consequences: a renamed rule is one finding only under each version; a
    sustained rule whose reading count changed is a different occurrence (its evidence
    differs); the message is never matched on, since it quotes the threshold.
    """
    return finding.occurrence_key, finding.variant or ""


def _minutes_after_dose(snapshot: SessionSnapshot, at: datetime) -> float | None:
    """As the finding's own message gives it: only when the initial dose was given by ``at``."""
    initial = snapshot.initial_dose()
    if initial is None or initial.administered_at > at:
        return None
    return round((at - initial.administered_at) / timedelta(minutes=1), 1)


def _shown(finding: Finding, snapshot: SessionSnapshot) -> dict[str, object]:
    return {
        "at": finding.at,
        "minutes_after_dose": _minutes_after_dose(snapshot, finding.at),
        "severity": finding.severity,
        "informational": finding.severity == "info",
        "rule_id": finding.rule_id,
        "kind": finding.kind,
        "variant": finding.variant,
        "title": finding.title,
        "message": finding.message,
        "evidence": list(finding.evidence),
        "thresholds": list(finding.thresholds),
        "observed": dict(finding.observed),
        "occurrence_key": finding.occurrence_key,
    }


def _at_least(severity: str, minimum: Severity | None) -> bool:
    return minimum is None or SEVERITY_ORDER[severity] >= SEVERITY_ORDER[minimum]


def compare(
    target: Sequence[Finding],
    baseline: Sequence[Finding],
    snapshot: SessionSnapshot,
    min_severity: Severity | None = None,
) -> ReplayComparison:
    """Pair the two versions' findings by :func:`_match_key` (in order, should one key occur
    twice); with ``min_severity``, a lone finding is kept when it reaches it and a matched pair
    when either side does (a warning downgraded to info is still worth seeing)."""
    waiting: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in baseline:
        waiting[_match_key(finding)].append(finding)
    only_target: list[ReplayFinding] = []
    both: list[MatchedFinding] = []
    for finding in target:
        pairs = waiting.get(_match_key(finding))
        if not pairs:
            if _at_least(finding.severity, min_severity):
                only_target.append(ReplayFinding.model_validate(_shown(finding, snapshot)))
            continue
        own = pairs.pop(0)
        if not (_at_least(finding.severity, min_severity) or _at_least(own.severity, min_severity)):
            continue
        changed = [name for name in _COMPARED if getattr(finding, name) != getattr(own, name)]
        both.append(
            MatchedFinding.model_validate(
                {
                    **_shown(finding, snapshot),
                    "changed": changed,
                    "baseline_severity": own.severity,
                    "baseline_message": own.message,
                }
            )
        )
    unmatched = sorted((f for left in waiting.values() for f in left), key=Finding.sort_key)
    only_baseline = [
        ReplayFinding.model_validate(_shown(finding, snapshot))
        for finding in unmatched
        if _at_least(finding.severity, min_severity)
    ]
    return ReplayComparison(only_target=only_target, only_baseline=only_baseline, both=both)


# --- the replay ---------------------------------------------------------------------------------


def replay_session(
    session: Session,
    dosing_session: DosingSession,
    target: ProtocolVersion,
    *,
    now: datetime,
    min_severity: Severity | None = None,
) -> ReplayReport:
    """Replay a finished session under ``target`` and under the version it ran under.

    Refused: a version of another protocol (422, checked first since it is wrong whatever the
    session's state) and a session not ended yet (409). Clock-driven findings (reporting
    deadlines) run to ``now``, the same clock for both versions.
    """
    baseline = protocols.get_version(session, dosing_session.protocol_version_id)
    _check_replayable(dosing_session, target, baseline)
    snapshot = snapshot_of(session, dosing_session, now)
    target_findings = replay(protocols.definition(target), snapshot)
    same = target.id == baseline.id
    baseline_findings = (
        target_findings if same else replay(protocols.definition(baseline), snapshot)
    )
    comparison = compare(target_findings, baseline_findings, snapshot, min_severity)
    findings = [
        ReplayFinding.model_validate(_shown(f, snapshot))
        for f in target_findings
        if _at_least(f.severity, min_severity)
    ]
    initial = snapshot.initial_dose()
    assert dosing_session.ended_at is not None  # _check_replayable
    as_of = max(now, dosing_session.ended_at)  # what app.rules.replay runs the clocks to
    record_event(
        session,
        REPLAY_ACTION,
        "dosing_sessions",
        str(dosing_session.id),
        after={
            "target_protocol_version_id": str(target.id),
            "baseline_protocol_version_id": str(baseline.id),
            "min_severity": min_severity,
            "as_of": as_of,
        },
    )
    return ReplayReport(
        dosing_session_id=dosing_session.id,
        visit_code=snapshot.visit_code,
        started_at=dosing_session.started_at,
        ended_at=dosing_session.ended_at,
        initial_dose_at=initial.administered_at if initial else None,
        as_of=as_of,
        min_severity=min_severity,
        target=version_ref(target),
        baseline=version_ref(baseline),
        same_version=same,
        findings=findings,
        comparison=comparison,
        summary=ReplaySummary(
            target_findings=len(findings),
            baseline_findings=sum(
                1 for f in baseline_findings if _at_least(f.severity, min_severity)
            ),
            only_target=len(comparison.only_target),
            only_baseline=len(comparison.only_baseline),
            both=len(comparison.both),
            changed=sum(1 for m in comparison.both if m.changed),
        ),
    )


def get_dosing_session(session: Session, dosing_session_id: uuid.UUID) -> DosingSession:
    """For the CLI, which has no caller to scope by (it runs with database access)."""
    dosing_session = session.get(DosingSession, dosing_session_id)
    if dosing_session is None:
        raise NotFound(f"dosing session {dosing_session_id} does not exist")
    return dosing_session
