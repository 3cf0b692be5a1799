"""How far back the rules look: the readings an evaluation of the findings since ``since`` needs.

New readings change nothing before the earliest of them, so the alerts service asks for the
findings since then (:func:`app.rules.evaluate` with ``since``). Most rules judge a reading on
readings a bounded time before it, so such an evaluation needs only the session's recent
readings, not all of them:

- threshold and NEWS2 rules: the reading itself;
- rate of change: the readings up to ``within_minutes`` before it;
- overdue measurements: a due time overdue from ``since`` on is met by readings up to twice its
  grace before that moment;
- change from baseline: the pre-dose baseline window, besides the reading itself.

Two rules can look back without bound; the caller loads the whole session where the window is
not enough:

- a sustained run can have begun at any time: the window is enough when it holds, before
  ``since``, a reading the rule judges and that breaks runs (does not meet the condition), since
  every run reaching ``since`` then begins inside the window (:func:`window_suffices`, told
  once the window's readings are loaded);
- a dose gate judges a supplemental dose on the latest readings before it, however old: there is
  no window when such a dose was given at or after ``since`` (:func:`reading_window`, told by
  the doses alone, before any reading is loaded).

A property test holds it: wherever there is a window and it suffices, the findings since
``since`` of the window's readings are those of the whole session.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.protocols.schema import Protocol
from app.rules.conditions import judge
from app.rules.snapshot import Dose, SessionSnapshot


def lookback(protocol: Protocol) -> timedelta:
    """How long before a moment the protocol's bounded rules look for readings."""
    minutes = [rule.within_minutes for rule in protocol.rules_of_kind("rate_of_change")]
    if protocol.rules_of_kind("overdue_measurement"):
        minutes += [2 * each.grace_minutes for each in protocol.vitals_schedule.intervals]
    return timedelta(minutes=max(minutes, default=0))


@dataclass(frozen=True)
class ReadingWindow:
    """The readings measured from ``start`` on, and those of the pre-dose baseline window
    (``baseline``, both ends included) when the session has an initial dose."""

    start: datetime
    baseline: tuple[datetime, datetime] | None = None

    def holds(self, measured_at: datetime) -> bool:
        if measured_at >= self.start:
            return True
        return self.baseline is not None and self.baseline[0] <= measured_at <= self.baseline[1]


def reading_window(
    protocol: Protocol, since: datetime, doses: Sequence[Dose]
) -> ReadingWindow | None:
    """The readings the findings since ``since`` are judged on, given the session's doses; None
    where only the whole session will do (a dose gate's supplemental dose at or after it)."""
    if protocol.rules_of_kind("dose_gate") and any(
        dose.kind == "supplemental" and dose.administered_at >= since for dose in doses
    ):
        return None
    baseline = None
    initial = next((dose for dose in doses if dose.kind == "initial"), None)
    if initial is not None and protocol.rules_of_kind("change_from_baseline"):
        within = timedelta(minutes=protocol.vitals_schedule.baseline.within_minutes_before_dose)
        baseline = (initial.administered_at - within, initial.administered_at)
    return ReadingWindow(since - lookback(protocol), baseline)


def window_suffices(
    protocol: Protocol, snapshot: SessionSnapshot, since: datetime, window: ReadingWindow
) -> bool:
    """Whether ``snapshot``, holding the readings of ``window`` only, gives the same findings
    since ``since`` as the whole session (its doses having given the window)."""
    before = [r for r in snapshot.readings if window.start <= r.measured_at < since]
    for rule in protocol.rules_of_kind("sustained"):
        breaks = (judge(rule.when, r.values) for r in before)
        if not any(result.judged and not result.met for result in breaks):
            return False
    return True
