"""Threshold and sustained rules: condition groups judged reading by reading.

Every reading is judged, not only the latest, and each one that meets a rule is a finding at its
``measured_at``. The findings of a session are then its history: replaying a finished session is
the same call as evaluating a running one, and the order readings arrive in cannot matter. All
findings of one rule in one session share a ``dedup_key``, so an alert still open is updated.
"""

from collections.abc import Iterator

from app.protocols.schema import SustainedRule, ThresholdRule
from app.rules import wording
from app.rules.conditions import GroupResult, judge
from app.rules.findings import Finding, RuleContext
from app.rules.snapshot import Reading


def _held_text(result: GroupResult) -> str:
    return " and ".join(wording.comparison(condition, value) for condition, value in result.held)


def threshold_findings(ctx: RuleContext, rule: ThresholdRule) -> Iterator[Finding]:
    thresholds = [wording.condition(c) for c in rule.when.conditions]
    for reading in ctx.snapshot.readings:
        if ctx.settled(reading.measured_at):
            continue
        result = judge(rule.when, reading.values)
        if not result.met:
            continue
        at = ctx.moment(reading.measured_at)
        yield ctx.finding(
            at=reading.measured_at,
            message=f"{wording.capitalise(_held_text(result))} at {at}.",
            observed=dict(result.values),
            thresholds=thresholds,
            evidence=[reading.id],
        )


def sustained_findings(ctx: RuleContext, rule: SustainedRule) -> Iterator[Finding]:
    """Runs of consecutive readings meeting the group, in measured_at order.

    Only readings the group can judge count (for ``all``, readings with every measure named); a
    judged reading that does not meet it ends the run. With ``consecutive_readings`` N, the N-th
    reading of a run and every later one in it are findings; with ``duration_minutes`` D, every
    reading of a run at least D minutes after the run's first reading is.
    """
    thresholds = [wording.group(rule.when)]
    if rule.consecutive_readings is not None:
        thresholds.append(f"{rule.consecutive_readings} readings in a row")
    else:
        thresholds.append(f"for at least {rule.duration_minutes} min")
    run: list[Reading] = []
    for reading in ctx.snapshot.readings:
        result = judge(rule.when, reading.values)
        if not result.judged:
            continue
        if not result.met:
            run = []
            continue
        run.append(reading)
        first = run[0]
        span_minutes = (reading.measured_at - first.measured_at).total_seconds() / 60
        if rule.consecutive_readings is not None:
            if len(run) < rule.consecutive_readings:
                continue
            used = run[-rule.consecutive_readings :]
            span = f"on {len(run)} readings in a row"
        else:
            assert rule.duration_minutes is not None
            if span_minutes < rule.duration_minutes:
                continue
            used = run
            span = f"for {wording.duration(span_minutes)} ({len(run)} readings in a row)"
        if ctx.settled(reading.measured_at):
            continue  # the run goes on; only its wording is skipped
        start = ctx.moment(first.measured_at, finding_at=reading.measured_at)
        end = ctx.moment(reading.measured_at)
        latest = wording.and_list(
            [
                f"{wording.MEASURE_NAMES[code]} {wording.with_unit(code, value)}"
                for code, value in result.values.items()
            ]
        )
        yield ctx.finding(
            at=reading.measured_at,
            message=(
                f"{wording.capitalise(wording.group_words(rule.when))} {span}, from {start} "
                f"to {end} (the latest: {latest})."
            ),
            observed={
                **result.values,
                "run_readings": len(run),
                "run_minutes": round(span_minutes, 1),
            },
            thresholds=thresholds,
            evidence=[each.id for each in used],
        )
