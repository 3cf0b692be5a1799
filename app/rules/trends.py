"""Change from the session baseline and rate of change: a reading judged against earlier ones.

The baseline of a measure is the last reading of it taken before the initial dose (at or before
``administered_at``) and no earlier than the protocol's ``baseline.within_minutes_before_dose``.
Every reading after the dose is compared with it. Without a baseline nothing can be judged; the
rule then says so once, as an info finding at the time of the dose.

A rate-of-change rule compares each reading with every earlier reading of the measure at most
``within_minutes`` before it, and fires on the largest move in its direction. Both rules fire
when the move is at least ``by`` (a move of exactly ``by`` counts), up to a rounding tolerance,
so 36.9 -> 37.9 C is a rise of 1.0 C and not of 0.9999999999999964.
"""

from collections import deque
from collections.abc import Iterator
from datetime import timedelta

from app.protocols.schema import ChangeFromBaselineRule, Direction, RateOfChangeRule
from app.rules import wording
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import Reading

TOLERANCE = 1e-9


def _move(direction: Direction, earlier: float, later: float) -> float:
    """How far ``later`` moved from ``earlier`` in the rule's direction (< 0: the other way)."""
    return later - earlier if direction == "increase" else earlier - later


def _word(direction: Direction) -> str:
    return "above" if direction == "increase" else "below"


def baseline(ctx: RuleContext, code: str) -> Reading | None:
    initial = ctx.snapshot.initial_dose()
    if initial is None:
        return None
    window = timedelta(minutes=ctx.protocol.vitals_schedule.baseline.within_minutes_before_dose)
    earliest = initial.administered_at - window
    candidates = [
        r
        for r in ctx.snapshot.readings
        if code in r.values and earliest <= r.measured_at <= initial.administered_at
    ]
    return candidates[-1] if candidates else None


def change_from_baseline_findings(
    ctx: RuleContext, rule: ChangeFromBaselineRule
) -> Iterator[Finding]:
    initial = ctx.snapshot.initial_dose()
    if initial is None:
        return
    code, name = rule.measure, wording.MEASURE_NAMES[rule.measure]
    by = f"{rule.by:g}%" if rule.unit == "%" else wording.with_unit(code, rule.by)
    threshold = f"{code} {rule.direction} >= {by} from the pre-dose baseline"
    base = baseline(ctx, code)
    if base is None:
        within = ctx.protocol.vitals_schedule.baseline.within_minutes_before_dose
        yield ctx.finding(
            at=initial.administered_at,
            message=(
                f"No pre-dose baseline for {name}: no reading of it in the {within} min before "
                f"the initial dose at {wording.clock(initial.administered_at, ctx.zone)}, so "
                "changes from baseline cannot be judged in this session."
            ),
            observed={"baseline_window_minutes": within},
            thresholds=[threshold],
            evidence=[initial.id],
            severity="info",
            variant="no-baseline",
            part="no-baseline",
        )
        return
    base_value = base.values[code]
    for reading in ctx.snapshot.readings:
        if reading.measured_at <= initial.administered_at or code not in reading.values:
            continue
        if ctx.settled(reading.measured_at):
            continue
        value = reading.values[code]
        move = _move(rule.direction, base_value, value)
        percent = move / base_value * 100
        if (percent if rule.unit == "%" else move) < rule.by - TOLERANCE:
            continue
        at = ctx.moment(reading.measured_at)
        base_at = ctx.moment(base.measured_at, finding_at=reading.measured_at)
        size = (
            f"{percent:.0f}% ({wording.amount(code, move)})"
            if rule.unit == "%"
            else wording.amount(code, move)
        )
        yield ctx.finding(
            at=reading.measured_at,
            message=(
                f"{wording.capitalise(name)} {wording.with_unit(code, value)} at {at} is {size} "
                f"{_word(rule.direction)} the pre-dose baseline of "
                f"{wording.with_unit(code, base_value)} at {base_at}; the rule fires at {by}."
            ),
            observed={
                code: value,
                "baseline": base_value,
                "change": round(value - base_value, 6),
                "change_percent": round((value - base_value) / base_value * 100, 2),
            },
            thresholds=[threshold],
            evidence=[base.id, reading.id],
        )


def rate_of_change_findings(ctx: RuleContext, rule: RateOfChangeRule) -> Iterator[Finding]:
    code = rule.measure
    window = timedelta(minutes=rule.within_minutes)
    series = [r for r in ctx.snapshot.readings if code in r.values]
    # The readings of the window that can still be the start of the largest move, lowest value
    # first for a rise (highest for a fall) and, among equal values, earliest first: the front
    # is always the start. Each reading goes in and out once, so a session costs O(readings).
    candidates: deque[Reading] = deque()
    sign = 1.0 if rule.direction == "increase" else -1.0
    for reading in series:
        while candidates and reading.measured_at - candidates[0].measured_at > window:
            candidates.popleft()
        value = reading.values[code]
        if candidates and not ctx.settled(reading.measured_at):
            start = candidates[0]
            move = _move(rule.direction, start.values[code], value)
            if move >= rule.by - TOLERANCE:
                yield _rate_finding(ctx, rule, reading, start, move)
        while candidates and sign * candidates[-1].values[code] > sign * value:
            candidates.pop()
        candidates.append(reading)


def _rate_finding(
    ctx: RuleContext, rule: RateOfChangeRule, reading: Reading, start: Reading, move: float
) -> Finding:
    code, name = rule.measure, wording.MEASURE_NAMES[rule.measure]
    value = reading.values[code]
    by = wording.with_unit(code, rule.by)
    threshold = f"{code} {rule.direction} >= {by} within {rule.within_minutes} min"
    at = ctx.moment(reading.measured_at)
    start_at = ctx.moment(start.measured_at, finding_at=reading.measured_at)
    minutes = (reading.measured_at - start.measured_at).total_seconds() / 60
    verb = "up" if rule.direction == "increase" else "down"
    return ctx.finding(
        at=reading.measured_at,
        message=(
            f"{wording.capitalise(name)} {wording.with_unit(code, value)} at {at} is {verb} "
            f"{wording.amount(code, move)} from {wording.with_unit(code, start.values[code])} "
            f"at {start_at}, {wording.duration(minutes)} earlier; the rule fires at {by} "
            f"within {rule.within_minutes} min."
        ),
        observed={
            code: value,
            "earlier": start.values[code],
            "change": round(value - start.values[code], 6),
            "minutes": round(minutes, 1),
        },
        thresholds=[threshold],
        evidence=[start.id, reading.id],
    )
