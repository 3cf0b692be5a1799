"""Overdue measurements, against the protocol's vitals schedule.

Due times count from the initial dose: each interval makes a measure due at ``from_minute``, then
every ``every_minutes``, up to and including ``to_minute``. Where two intervals meet (one ends at
minute 240, the next starts there) the measure is due once, with the longer of the two graces.

A due time D with grace g is met by any reading of the measure measured in [D - g, D + g], both
ends included; a reading may meet more than one due time. A due time not met is overdue from
D + g, which is the finding's ``at``, once ``now`` is past it, and only if the session was in
progress then (started, not yet ended). Nothing is due before the initial dose. The measures of
one rule that are missed at the same due time make one finding.

So an overdue finding can only begin at one of a few moments fixed by the initial dose
(:func:`overdue_moments`): a sweep that already judged the session up to ``t`` has nothing new
to look for until the clock passes the next of them.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.protocols.schema import OverdueMeasurementRule, Protocol, VitalsSchedule
from app.rules import wording
from app.rules.findings import Finding, RuleContext


@dataclass(frozen=True, order=True)
class DueTime:
    minute: int  # after the initial dose
    grace_minutes: int
    measure: str


def due_times(schedule: VitalsSchedule, measures: list[str]) -> list[DueTime]:
    """Every due time of the listed measures, in (minute, grace, measure) order."""
    graces: dict[tuple[str, int], int] = {}
    for interval in schedule.intervals:
        for code in interval.measures:
            if code not in measures:
                continue
            for minute in range(
                interval.from_minute, interval.to_minute + 1, interval.every_minutes
            ):
                key = (code, minute)
                graces[key] = max(graces.get(key, 0), interval.grace_minutes)
    return sorted(DueTime(minute, grace, code) for (code, minute), grace in graces.items())


def overdue_moments(protocol: Protocol, initial_dose_at: datetime) -> list[datetime]:
    """Every moment at which one of the protocol's overdue rules may find a measurement overdue
    (a due time plus its grace, counted from the initial dose), sorted; an overdue finding's
    ``at`` is always one of them."""
    moments = {
        initial_dose_at + timedelta(minutes=due.minute + due.grace_minutes)
        for rule in protocol.rules_of_kind("overdue_measurement")
        for due in due_times(protocol.vitals_schedule, rule.measures)
    }
    return sorted(moments)


def overdue_between(
    protocol: Protocol, initial_dose_at: datetime, since: datetime, now: datetime
) -> bool:
    """May an overdue finding begin in [since, now)? Only then can a sweep at ``now`` find one
    that a sweep at ``since`` did not (with the same records)."""
    return any(since <= moment < now for moment in overdue_moments(protocol, initial_dose_at))


def met_window(overdue_at: datetime, grace_minutes: int) -> tuple[datetime, datetime]:
    """When a reading of a missing measure must have been measured, both ends included, to meet
    the due time of an overdue finding at ``overdue_at`` (the due time plus its grace)."""
    grace = timedelta(minutes=grace_minutes)
    return overdue_at - 2 * grace, overdue_at


def _measured(ctx: RuleContext, code: str, start: datetime, end: datetime) -> bool:
    return any(code in r.values and start <= r.measured_at <= end for r in ctx.snapshot.readings)


def overdue_findings(ctx: RuleContext, rule: OverdueMeasurementRule) -> Iterator[Finding]:
    snapshot = ctx.snapshot
    initial = snapshot.initial_dose()
    if initial is None:
        return
    missed: dict[tuple[int, int], list[str]] = {}
    for due in due_times(ctx.protocol.vitals_schedule, rule.measures):
        due_at = initial.administered_at + timedelta(minutes=due.minute)
        grace = timedelta(minutes=due.grace_minutes)
        overdue_at = due_at + grace
        if not (snapshot.now > overdue_at and snapshot.in_progress_at(overdue_at)):
            continue
        if not _measured(ctx, due.measure, *met_window(overdue_at, due.grace_minutes)):
            missed.setdefault((due.minute, due.grace_minutes), []).append(due.measure)
    for (minute, grace_minutes), missing in sorted(missed.items()):
        codes = [code for code in rule.measures if code in missing]
        due_at = initial.administered_at + timedelta(minutes=minute)
        names = wording.and_list([wording.MEASURE_NAMES[code] for code in codes])
        verb = "was" if len(codes) == 1 else "were"
        yield ctx.finding(
            at=due_at + timedelta(minutes=grace_minutes),
            message=(
                f"{wording.capitalise(names)} due at "
                f"{wording.moment(due_at, minute, ctx.zone)} {verb} "
                f"not measured within {grace_minutes} min of it."
            ),
            observed={
                "due_minute": minute,
                "grace_minutes": grace_minutes,
                "missing": ", ".join(codes),
            },
            thresholds=[f"due at T+{minute} min, within {grace_minutes} min either side"],
            evidence=[initial.id],
        )
