"""The supplemental dose gate: may the supplemental dose be given now?

:func:`evaluate_dose_gate` answers for the snapshot's ``now``. The gate is closed, with every
reason listed, when: the session has ended; the visit has no dosing definition or allows no
supplemental dose; no initial dose has been given; a supplemental dose was already given; the
supplemental amount would take the session past ``max_total_mg``; ``now`` is outside the
supplemental window (both ends allowed, as the dosing service checks it); and, for each
``dose_gate`` rule, while an alert at or above ``block_on_open_alert_severity`` is open, while
the latest value of a ``block_if`` measure is missing or older than
``max_reading_age_minutes``, or while the latest values meet ``block_if``. The latest value of
each measure may come from a different reading. A protocol without a dose_gate rule still gets
the structural checks.

As a rule in :func:`app.rules.engine.evaluate`, a dose gate is a finding when a supplemental dose
was given while the gate was closed, judged on what was known just before the dose. Which alerts
were open then is the alerts service's history, not the snapshot's, so that check is left out.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.protocols.schema import SEVERITY_ORDER, DoseGateRule, Protocol
from app.rules import wording
from app.rules.conditions import judge
from app.rules.dose_limits import AMOUNT_TOLERANCE_MG
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import Reading, SessionSnapshot


class GateCheck(StrEnum):
    """What closed the gate: the protocol's dose limits (the session, the supplemental window,
    the amounts, the doses already given), which a deviation reason answers, or a dose_gate
    rule (readings, open alerts), which only a clinician's override answers."""

    DOSE_LIMITS = "dose_limits"
    CLINICAL = "clinical"


@dataclass(frozen=True)
class GateReason:
    check: GateCheck
    text: str  # the sentence a clinician reads


@dataclass(frozen=True)
class GateDecision:
    why: tuple[GateReason, ...]  # why it is closed; empty when open
    opens_at: datetime | None  # the supplemental window, once there is an initial dose
    closes_at: datetime | None
    supplemental_mg: float | None  # the amount the protocol sets for this session
    evaluated_at: datetime
    rule_ids: tuple[str, ...]  # the dose_gate rules consulted
    evidence: tuple[str, ...]  # the readings and doses looked at

    @property
    def open(self) -> bool:
        return not self.why

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(reason.text for reason in self.why)

    def reasons_of(self, check: GateCheck) -> list[str]:
        return [reason.text for reason in self.why if reason.check is check]


def evaluate_dose_gate(protocol: Protocol, snapshot: SessionSnapshot) -> GateDecision:
    return decide(protocol, snapshot, protocol.rules_of_kind("dose_gate"))


def _latest(readings: Sequence[Reading], code: str) -> Reading | None:
    return next((r for r in reversed(readings) if code in r.values), None)


def decide(
    protocol: Protocol, snapshot: SessionSnapshot, rules: Sequence[DoseGateRule]
) -> GateDecision:
    now = snapshot.now
    reasons: list[str] = []
    evidence: list[str] = []
    opens_at = closes_at = None
    supplemental_mg = None
    if snapshot.ended_at is not None and snapshot.ended_at <= now:
        reasons.append(
            f"the session ended at {wording.clock(snapshot.ended_at, snapshot.timezone)}"
        )
    definition = protocol.dosing_for_visit(snapshot.visit_code)
    if definition is None:
        info = protocol.protocol
        reasons.append(
            f"visit {snapshot.visit_code} is not a dosing session of protocol {info.id} "
            f"{info.version}"
        )
    elif definition.supplemental is None:
        reasons.append(f"the protocol allows no supplemental dose at {definition.visit}")
    initial = snapshot.initial_dose()
    if initial is None:
        reasons.append("no initial dose has been given")
    if definition is not None and definition.supplemental is not None and initial is not None:
        evidence.append(initial.id)
        supplemental_mg = definition.supplemental_mg(initial.amount_mg)
        assert supplemental_mg is not None
        minutes = definition.supplemental.window_minutes
        opens_at = initial.administered_at + timedelta(minutes=minutes.start)
        closes_at = initial.administered_at + timedelta(minutes=minutes.end)
        for given in (d for d in snapshot.doses if d.kind == "supplemental"):
            evidence.append(given.id)
            reasons.append(
                f"a supplemental dose ({wording.mg(given.amount_mg)}) was already given at "
                f"{wording.clock(given.administered_at, snapshot.timezone)}; the protocol allows "
                "one"
            )
        total = sum(d.amount_mg for d in snapshot.doses) + supplemental_mg
        if total > definition.max_total_mg + AMOUNT_TOLERANCE_MG:
            reasons.append(
                f"the supplemental {wording.mg(supplemental_mg)} would bring the session total "
                f"to {wording.mg(total)}, above the maximum of "
                f"{wording.mg(definition.max_total_mg)}"
            )
        if now < opens_at:
            reasons.append(
                f"the supplemental window opens at {wording.clock(opens_at, snapshot.timezone)}, "
                f"{minutes.start} min after the initial dose"
            )
        elif now > closes_at:
            reasons.append(
                f"the supplemental window closed at {wording.clock(closes_at, snapshot.timezone)}, "
                f"{minutes.end} min after the initial dose"
            )
    why = [GateReason(GateCheck.DOSE_LIMITS, reason) for reason in reasons]
    for rule in rules:
        why += [GateReason(GateCheck.CLINICAL, r) for r in _rule_reasons(rule, snapshot, evidence)]
    return GateDecision(
        why=tuple(dict.fromkeys(why)),
        opens_at=opens_at,
        closes_at=closes_at,
        supplemental_mg=supplemental_mg,
        evaluated_at=now,
        rule_ids=tuple(rule.id for rule in rules),
        evidence=tuple(dict.fromkeys(evidence)),
    )


def _rule_reasons(rule: DoseGateRule, snapshot: SessionSnapshot, evidence: list[str]) -> list[str]:
    reasons = []
    block_at = rule.block_on_open_alert_severity
    if block_at is not None:
        for alert in snapshot.open_alerts:
            if SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[block_at]:
                reasons.append(f"an open {alert.severity} alert ({alert.rule_id}) blocks it")
    latest: dict[str, Reading] = {}
    for code in rule.block_if.measures():
        reading = _latest(snapshot.readings, code)
        name = wording.MEASURE_NAMES[code]
        if reading is None:
            reasons.append(f"{name} has not been measured in this session")
            continue
        latest[code] = reading
        evidence.append(reading.id)
        age = (snapshot.now - reading.measured_at).total_seconds() / 60
        if age > rule.max_reading_age_minutes:
            reasons.append(
                f"the latest {name} ({wording.clock(reading.measured_at, snapshot.timezone)}) is "
                f"{wording.duration(age)} old; the gate needs one at most "
                f"{rule.max_reading_age_minutes} min old"
            )
    result = judge(rule.block_if, {code: r.values[code] for code, r in latest.items()})
    if result.met:
        for condition, value in result.held:
            at = wording.clock(latest[condition.measure].measured_at, snapshot.timezone)
            reasons.append(f"{wording.comparison(condition, value)} at {at}")
    return reasons


def dose_gate_findings(ctx: RuleContext, rule: DoseGateRule) -> Iterator[Finding]:
    """A supplemental dose given while this gate was closed, judged just before the dose."""
    for dose in ctx.snapshot.doses:
        if dose.kind != "supplemental":
            continue
        known = ctx.snapshot.as_of(dose.administered_at)  # leaves out open alerts
        before = replace(known, doses=[d for d in known.doses if d.id != dose.id])
        decision = decide(ctx.protocol, before, [rule])
        if decision.open:
            continue
        at = ctx.moment(dose.administered_at)
        yield ctx.finding(
            at=dose.administered_at,
            message=(
                f"Supplemental dose {wording.mg(dose.amount_mg)} given at {at} while the dose "
                f"gate was closed: {'; '.join(decision.reasons)}."
            ),
            observed={"amount_mg": dose.amount_mg, "reasons": len(decision.reasons)},
            thresholds=[
                f"block if {wording.group(rule.block_if)}",
                f"latest readings at most {rule.max_reading_age_minutes} min old",
                "within the protocol's supplemental window and dose limits",
            ],
            evidence=[dose.id, *decision.evidence],
            variant="given-while-closed",
            record_id=dose.id,
        )
