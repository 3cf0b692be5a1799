"""The rules engine: a validated protocol and a session snapshot in, findings out. Pure.

:func:`evaluate` judges every rule of the protocol over the snapshot's whole timeline and returns
every finding that had become true by ``now``, each at the moment it became true, sorted by
(at, rule id, dedup key, evidence). Most findings depend only on what happened before their
``at`` (readings, doses, events); the clock-driven ones (an overdue measurement, a reporting
deadline) fire once ``now`` is past their moment. So evaluating the snapshot as it was known
at any time t (``snapshot.as_of(t)``) gives exactly the findings with ``at <= t`` of the whole
snapshot evaluated with ``now = t``, which is what makes :func:`replay` of a finished session the
same call as a live evaluation. The alerts service keeps the occurrences it has seen
(``occurrence_key``) and updates an open alert with the same ``dedup_key``.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from app.protocols.schema import (
    AdverseEventRule,
    AnyRule,
    ChangeFromBaselineRule,
    CompositeScoreRule,
    CssrsRule,
    DoseGateRule,
    OverdueMeasurementRule,
    Protocol,
    RateOfChangeRule,
    SustainedRule,
    ThresholdRule,
)
from app.rules.dose_gate import dose_gate_findings
from app.rules.events import adverse_event_findings, cssrs_findings
from app.rules.findings import Finding, RuleContext, sort_findings
from app.rules.news2 import composite_findings
from app.rules.overdue import overdue_findings
from app.rules.snapshot import SessionSnapshot
from app.rules.trends import change_from_baseline_findings, rate_of_change_findings
from app.rules.vital_signs import sustained_findings, threshold_findings


def _rule_findings(ctx: RuleContext) -> Iterator[Finding]:
    rule = ctx.rule
    if isinstance(rule, ThresholdRule):
        return threshold_findings(ctx, rule)
    if isinstance(rule, SustainedRule):
        return sustained_findings(ctx, rule)
    if isinstance(rule, ChangeFromBaselineRule):
        return change_from_baseline_findings(ctx, rule)
    if isinstance(rule, RateOfChangeRule):
        return rate_of_change_findings(ctx, rule)
    if isinstance(rule, OverdueMeasurementRule):
        return overdue_findings(ctx, rule)
    if isinstance(rule, CompositeScoreRule):
        return composite_findings(ctx, rule)
    if isinstance(rule, DoseGateRule):
        return dose_gate_findings(ctx, rule)
    if isinstance(rule, AdverseEventRule):
        return adverse_event_findings(ctx, rule)
    if isinstance(rule, CssrsRule):
        return cssrs_findings(ctx, rule)
    raise TypeError(f"no evaluator for rule kind {rule.kind!r}")  # fail closed


def _wanted(ctx: RuleContext) -> Iterator[Finding]:
    found = _rule_findings(ctx)
    since = ctx.since
    return found if since is None else (f for f in found if f.at >= since)


def evaluate_rule(
    protocol: Protocol,
    rule: AnyRule,
    snapshot: SessionSnapshot,
    since: datetime | None = None,
) -> list[Finding]:
    """The findings of one rule (which must be one of the protocol's), sorted; only those at or
    after ``since`` when given."""
    if rule not in protocol.rules:
        raise ValueError(f"rule {rule.id!r} is not a rule of protocol {protocol.protocol.id}")
    return sort_findings(list(_wanted(RuleContext(protocol, rule, snapshot, since))))


def evaluate(
    protocol: Protocol, snapshot: SessionSnapshot, since: datetime | None = None
) -> list[Finding]:
    """Every finding of every rule of ``protocol`` on ``snapshot``, sorted.

    With ``since``, only the findings at or after it: exactly those of the whole evaluation
    (a property test holds the engine to it), found without judging again the readings before
    it where a rule allows. After new readings arrive, nothing before the earliest of them can
    have changed (a finding depends only on what happened by its moment), so the alerts service
    asks for the findings since then.
    """
    found: list[Finding] = []
    for rule in protocol.rules:
        found.extend(_wanted(RuleContext(protocol, rule, snapshot, since)))
    return sort_findings(found)


def replay(protocol: Protocol, snapshot: SessionSnapshot) -> list[Finding]:
    """What ``protocol`` finds over a finished session: every finding with its moment.

    The protocol may be another version than the one the session ran under ("what would have
    fired"). The clocks run to the snapshot's ``now`` (at least the session's end), so reporting
    deadlines after the session are judged as of ``now``. Open alerts play no part.
    """
    if snapshot.ended_at is None:
        raise ValueError(
            "replay needs a finished session (ended_at); use evaluate() for a live one"
        )
    now = max(snapshot.now, snapshot.ended_at)
    return evaluate(protocol, replace(snapshot, now=now, open_alerts=()))
