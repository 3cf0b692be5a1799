"""The supplemental dose gate: may the supplemental dose be given now?

:func:`evaluate_dose_gate` answers for a supplemental dose given at the snapshot's ``now``, of
the amount proposed (default: the protocol's), with the very checks that recording that dose
applies (app/rules/dose_limits.py), so an open gate means the dose is recorded without a
deviation or an override reason. Every reason is listed, each typed by the :class:`Refusal` it
is (in that priority) and by what answers it (:class:`GateCheck`): the session refuses any
supplemental dose (it has ended, the visit has no dosing, no initial dose before it: then
those reasons alone); the dose limits (no supplemental dose allowed, one already given, the
amount, the session maximum, the window, both ends allowed); and, for each ``dose_gate`` rule,
an alert at or above ``block_on_open_alert_severity`` open, the latest value of a ``block_if``
measure missing or older than ``max_reading_age_minutes``, or the latest values meeting
``block_if``. The latest value of each measure may come from a different reading. A protocol
without a dose_gate rule still gets the other checks.

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
from app.rules.dose_limits import (
    PRIORITY,
    Problem,
    Refusal,
    protocol_problems,
    structural_problems,
    supplemental_window,
)
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import Reading, SessionSnapshot


class GateCheck(StrEnum):
    """What closed the gate: the session itself (no supplemental dose can be recorded: it is
    not in progress, or the dose would break the order of doses), the protocol's dose limits
    (the supplemental window, the amounts, the doses already given), which a deviation reason
    answers, or a dose_gate rule (readings, open alerts), which only a clinician's override
    answers."""

    SESSION = "session"
    DOSE_LIMITS = "dose_limits"
    CLINICAL = "clinical"


@dataclass(frozen=True)
class GateReason:
    check: GateCheck
    refusal: Refusal  # the kind of reason; the API's problem type
    field: str  # the request field a refused dose names for it ("gate" for a rule's)
    text: str  # the sentence a clinician reads


@dataclass(frozen=True)
class GateDecision:
    why: tuple[GateReason, ...]  # why it is closed, in Refusal priority; empty when open
    opens_at: datetime | None  # the supplemental window, once there is an initial dose
    closes_at: datetime | None
    supplemental_mg: float | None  # the amount the protocol sets for this session
    amount_mg: float | None  # the amount judged: the one proposed, or the protocol's
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

    def with_session_reasons(self, reasons: Sequence[GateReason]) -> "GateDecision":
        """The decision once the session itself refuses any dose: those reasons alone."""
        return replace(self, why=tuple(reasons)) if reasons else self


def evaluate_dose_gate(
    protocol: Protocol, snapshot: SessionSnapshot, amount_mg: float | None = None
) -> GateDecision:
    return decide(protocol, snapshot, protocol.rules_of_kind("dose_gate"), amount_mg)


def _latest(readings: Sequence[Reading], code: str) -> Reading | None:
    return next((r for r in reversed(readings) if code in r.values), None)


def _reason(check: GateCheck, problem: Problem) -> GateReason:
    return GateReason(check, problem.refusal, problem.field, problem.message)


def decide(
    protocol: Protocol,
    snapshot: SessionSnapshot,
    rules: Sequence[DoseGateRule],
    amount_mg: float | None = None,
) -> GateDecision:
    """The gate for a supplemental dose of ``amount_mg`` (default: the protocol's amount) given
    at ``snapshot.now``: the checks of recording that dose (app/rules/dose_limits.py) and the
    dose_gate rules. While the session refuses any supplemental dose (ended, not a dosing
    visit, out of order), those are the only reasons."""
    now = snapshot.now
    session: list[GateReason] = []
    evidence: list[str] = []
    opens_at = closes_at = supplemental_mg = None
    if snapshot.ended_at is not None and snapshot.ended_at <= now:
        text = f"the session ended at {wording.clock(snapshot.ended_at, snapshot.timezone)}"
        session.append(
            GateReason(GateCheck.SESSION, Refusal.SESSION_NOT_IN_PROGRESS, "administered_at", text)
        )
    definition = protocol.dosing_for_visit(snapshot.visit_code)
    if definition is None:
        info = protocol.protocol
        text = (
            f"visit {snapshot.visit_code} is not a dosing session of protocol {info.id} "
            f"{info.version}"
        )
        session.append(GateReason(GateCheck.SESSION, Refusal.DOSE_NOT_ALLOWED, "kind", text))
    structural = structural_problems("supplemental", now, snapshot.doses)
    session += [_reason(GateCheck.SESSION, problem) for problem in structural]
    why: list[GateReason] = []
    initial = snapshot.initial_dose()
    if definition is not None and not session:
        assert initial is not None  # structural_problems asks for one
        evidence.append(initial.id)
        evidence += [d.id for d in snapshot.doses if d.kind == "supplemental"]
        supplemental_mg = definition.supplemental_mg(initial.amount_mg)
        window = supplemental_window(definition, snapshot.doses)
        if window is not None:
            opens_at, closes_at = window
        amount = amount_mg if amount_mg is not None else (supplemental_mg or 0.0)
        limits = protocol_problems(
            definition, "supplemental", amount, now, snapshot.doses, snapshot.timezone
        )
        why += [_reason(GateCheck.DOSE_LIMITS, problem) for problem in limits]
        for rule in rules:
            why += _rule_reasons(rule, snapshot, evidence)
    chosen = session or why
    return GateDecision(
        why=tuple(sorted(dict.fromkeys(chosen), key=lambda r: PRIORITY[r.refusal])),
        opens_at=opens_at,
        closes_at=closes_at,
        supplemental_mg=supplemental_mg,
        amount_mg=amount_mg if amount_mg is not None else supplemental_mg,
        evaluated_at=now,
        rule_ids=tuple(rule.id for rule in rules),
        evidence=tuple(dict.fromkeys(evidence)),
    )


def _rule_reasons(
    rule: DoseGateRule, snapshot: SessionSnapshot, evidence: list[str]
) -> list[GateReason]:
    reasons = []

    def add(refusal: Refusal, text: str) -> None:
        reasons.append(GateReason(GateCheck.CLINICAL, refusal, "gate", text))

    block_at = rule.block_on_open_alert_severity
    if block_at is not None:
        for alert in snapshot.open_alerts:
            if SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[block_at]:
                add(
                    Refusal.GATE_OPEN_ALERT,
                    f"an open {alert.severity} alert ({alert.rule_id}) blocks it",
                )
    latest: dict[str, Reading] = {}
    for code in rule.block_if.measures():
        reading = _latest(snapshot.readings, code)
        name = wording.MEASURE_NAMES[code]
        if reading is None:
            add(Refusal.GATE_STALE_VITALS, f"{name} has not been measured in this session")
            continue
        latest[code] = reading
        evidence.append(reading.id)
        age = snapshot.now - reading.measured_at
        limit = timedelta(minutes=rule.max_reading_age_minutes)
        if age > limit:
            add(
                Refusal.GATE_STALE_VITALS,
                f"the latest {name}, at {wording.clock(reading.measured_at, snapshot.timezone)}, "
                "is "
                f"{wording.duration_beyond(age.total_seconds(), limit.total_seconds())} old; "
                f"the gate needs one at most {rule.max_reading_age_minutes} min old",
            )
    result = judge(rule.block_if, {code: r.values[code] for code, r in latest.items()})
    if result.met:
        for condition, value in result.held:
            at = wording.clock(latest[condition.measure].measured_at, snapshot.timezone)
            add(Refusal.GATE_VITALS, f"{wording.comparison(condition, value)} at {at}")
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
