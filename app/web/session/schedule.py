"""The measurement schedule of a dosing session as its page shows it: the next measurement due
and the measurements overdue now, judged as the overdue rules judge them (app/rules/overdue.py).

Due times count from the initial dose; a due time D with grace g is met by a reading of the
measure measured in [D - g, D + g], and is overdue from D + g. The page calls a missed due time
"overdue now" only while nothing of that measure has been measured since D - g: a measurement
missed at minute 30 and taken at minute 50 is no longer waited for (its alert, if one was
raised, stays in the alerts list)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.protocols.schema import Protocol
from app.rules import Reading
from app.rules.overdue import DueTime, due_times, met_window


@dataclass(frozen=True)
class Due:
    """The measures due at one minute after the initial dose."""

    minute: int
    due_at: datetime
    grace_minutes: int
    measures: tuple[str, ...]  # SDTM codes

    @property
    def overdue_at(self) -> datetime:
        return self.due_at + timedelta(minutes=self.grace_minutes)


@dataclass(frozen=True)
class ScheduleState:
    running: bool  # in progress with an initial dose: the schedule applies
    next_due: Due | None
    overdue: list[Due]


def _measured(readings: Sequence[Reading], code: str, start: datetime, end: datetime) -> bool:
    return any(code in r.values and start <= r.measured_at <= end for r in readings)


def _grouped(dues: list[tuple[DueTime, datetime]]) -> list[Due]:
    by_minute: dict[int, list[tuple[DueTime, datetime]]] = {}
    for due, at in dues:
        by_minute.setdefault(due.minute, []).append((due, at))
    return [
        Due(
            minute=minute,
            due_at=group[0][1],
            grace_minutes=max(due.grace_minutes for due, _ in group),
            measures=tuple(due.measure for due, _ in group),
        )
        for minute, group in sorted(by_minute.items())
    ]


def schedule_state(
    protocol: Protocol,
    initial_dose_at: datetime | None,
    readings: Sequence[Reading],
    now: datetime,
    *,
    in_progress: bool,
) -> ScheduleState:
    """What is due next and what is overdue now, for a session in progress at ``now``."""
    if initial_dose_at is None or not in_progress:
        return ScheduleState(running=False, next_due=None, overdue=[])
    schedule = protocol.vitals_schedule
    measures = sorted(schedule.scheduled_measures())
    upcoming: list[tuple[DueTime, datetime]] = []
    missed: list[tuple[DueTime, datetime]] = []
    for due in due_times(schedule, measures):
        due_at = initial_dose_at + timedelta(minutes=due.minute)
        overdue_at = due_at + timedelta(minutes=due.grace_minutes)
        window_start, _ = met_window(overdue_at, due.grace_minutes)
        if _measured(readings, due.measure, window_start, overdue_at):
            continue
        if overdue_at >= now:
            upcoming.append((due, due_at))
        elif not _measured(readings, due.measure, window_start, now):
            missed.append((due, due_at))
    later = _grouped(upcoming)
    # a measure missed at several due times is overdue once, since the latest of them
    latest: dict[str, tuple[DueTime, datetime]] = {}
    for due, at in missed:
        latest[due.measure] = (due, at)
    return ScheduleState(
        running=True, next_due=later[0] if later else None, overdue=_grouped(list(latest.values()))
    )
