"""The planned time point a vital reading answers (VSTPT, VSTPTNUM, VSELTM, VSTPTREF): the due
time of the protocol's vitals schedule (app/rules/overdue.py) whose window holds the reading.
A due time D minutes after the initial dose, with grace g, is answered by a reading of its
measure measured within [D - g, D + g] of it, the window the overdue rules use; of two such due
times the nearer wins (the earlier on a tie). A reading that answers none (unscheduled, before
the dose, a session without an initial dose) has no planned time point. Pure: no database."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.rules.overdue import DueTime

REFERENCE = "INITIAL DOSE"


@dataclass(frozen=True)
class TimePoint:
    minute: int  # VSTPTNUM: planned minutes after the initial dose

    @property
    def name(self) -> str:  # VSTPT
        return f"{self.minute} MIN POST-DOSE"

    @property
    def elapsed(self) -> str:  # VSELTM, ISO 8601 (PT1H30M)
        hours, minutes = divmod(self.minute, 60)
        if not hours and not minutes:
            return "PT0M"
        return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")


def by_measure(due_times: Iterable[DueTime]) -> dict[str, list[DueTime]]:
    grouped: dict[str, list[DueTime]] = {}
    for due in due_times:
        grouped.setdefault(due.measure, []).append(due)
    return grouped


def answered(
    due_times: list[DueTime], initial_dose_at: datetime | None, measured_at: datetime
) -> TimePoint | None:
    """The planned time point of one measure of a reading measured at ``measured_at``."""
    if initial_dose_at is None:
        return None
    after = (measured_at - initial_dose_at).total_seconds() / 60
    best: tuple[float, int] | None = None
    for due in due_times:
        distance = abs(after - due.minute)
        if distance <= due.grace_minutes and (best is None or (distance, due.minute) < best):
            best = (distance, due.minute)
    return TimePoint(best[1]) if best is not None else None


class Windows:
    """The due times of one measure, ready to answer many readings: ``minute(after)`` is the
    VSTPTNUM that ``answered`` gives a reading ``after`` minutes after the initial dose."""

    def __init__(self, due_times: Iterable[DueTime]) -> None:
        self._due = tuple(sorted({(due.minute, due.grace_minutes) for due in due_times}))
        graces = [grace for _, grace in self._due]
        self._widest = max(graces, default=0)
        self._low = min((m - g for m, g in self._due), default=0)
        self._high = max((m + g for m, g in self._due), default=-1)

    def minute(self, after: float) -> int | None:
        if not self._low <= after <= self._high:
            return None
        best: tuple[float, int] | None = None
        for minute, grace in self._due:
            if minute - after > self._widest:
                break  # sorted by minute: no later due time's window reaches back this far
            distance = abs(after - minute)
            if distance <= grace and (best is None or (distance, minute) < best):
                best = (distance, minute)
        return best[1] if best is not None else None
