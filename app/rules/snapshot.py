"""What the rules engine is given: an immutable picture of one dosing session.

A :class:`SessionSnapshot` holds what is known about one dosing session at the moment ``now``:
its readings (canonical units, entered-in-error ones left out by whoever builds the snapshot),
doses, adverse events, C-SSRS screens and the alerts still open. Everything is a frozen
dataclass, collections are tuples sorted into one canonical order, and every time must carry a
timezone: the order in which the caller lists things can never change a finding.

The snapshot checks what the engine relies on and refuses the rest (fail closed): unknown measure
codes, values no living participant can measure, naive datetimes, duplicate ids, two initial
doses, doses in a session that never started.
"""

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Literal

from app.clinical.measures import MEASURES, get_measure
from app.protocols.schema import SEVERITY_ORDER, Severity

DoseKind = Literal["initial", "supplemental"]
CSSRS_ITEMS = range(1, 7)


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must carry a timezone offset, got {value.isoformat()}")


def _require_unique(ids: Iterable[Hashable], what: str) -> None:
    seen: set[Hashable] = set()
    for each in ids:
        if each in seen:
            raise ValueError(f"{what} id {each!r} appears twice in the snapshot")
        seen.add(each)


@dataclass(frozen=True)
class Reading:
    """One measurement moment: the values present, keyed by SDTM code, in canonical units.

    A reading may lack some measures (a blood-pressure-only reading). ``supplemental_oxygen`` and
    ``new_confusion`` are the two NEWS2 observations that are not measures; False means room air
    and alert. ``received_at`` is when the server stored it (None: not known, taken as on time).
    """

    id: str
    measured_at: datetime
    values: Mapping[str, float] = field(hash=False)
    supplemental_oxygen: bool = False
    new_confusion: bool = False
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware(self.measured_at, f"reading {self.id} measured_at")
        if self.received_at is not None:
            _require_aware(self.received_at, f"reading {self.id} received_at")
        if not self.values:
            raise ValueError(f"reading {self.id} has no values")
        checked: dict[str, float] = {}
        for code, value in self.values.items():
            measure = get_measure(code)  # UnknownMeasure is a ValueError naming the known ones
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"reading {self.id}: {code} value {value!r} is not a number")
            if not math.isfinite(value) or not (
                measure.possible_min <= value <= measure.possible_max
            ):
                raise ValueError(
                    f"reading {self.id}: {code} {value:g} {measure.unit} is outside what can be "
                    f"measured ({measure.possible_min:g}..{measure.possible_max:g})"
                )
            checked[code] = float(value)
        ordered = {code: checked[code] for code in MEASURES if code in checked}
        object.__setattr__(self, "values", MappingProxyType(ordered))

    def has(self, code: str) -> bool:
        return code in self.values

    def minutes_late(self) -> float:
        """How long after it was measured the server received it (0 when not known)."""
        if self.received_at is None:
            return 0.0
        return max(0.0, (self.received_at - self.measured_at) / timedelta(minutes=1))


@dataclass(frozen=True)
class Dose:
    id: str
    kind: DoseKind
    amount_mg: float
    administered_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.administered_at, f"dose {self.id} administered_at")
        if self.kind not in ("initial", "supplemental"):
            raise ValueError(f"dose {self.id}: kind {self.kind!r} is not initial or supplemental")
        if (
            isinstance(self.amount_mg, bool)
            or not isinstance(self.amount_mg, int | float)
            or not math.isfinite(self.amount_mg)
            or self.amount_mg <= 0
        ):
            raise ValueError(f"dose {self.id}: amount_mg {self.amount_mg!r} is not positive")
        object.__setattr__(self, "amount_mg", float(self.amount_mg))


@dataclass(frozen=True)
class AdverseEvent:
    """An adverse event of this session. ``coded_term`` is the MedDRA term once coded."""

    id: str
    verbatim_term: str
    serious: bool
    ctcae_grade: int | None
    onset_at: datetime
    site_aware_at: datetime
    sponsor_reported_at: datetime | None = None
    coded_term: str | None = None

    def __post_init__(self) -> None:
        for name in ("onset_at", "site_aware_at", "sponsor_reported_at"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(value, f"adverse event {self.id} {name}")
        if self.ctcae_grade is not None and not 1 <= self.ctcae_grade <= 5:
            raise ValueError(f"adverse event {self.id}: CTCAE grade {self.ctcae_grade} not 1..5")
        if not self.verbatim_term.strip():
            raise ValueError(f"adverse event {self.id} has an empty verbatim term")


@dataclass(frozen=True)
class CssrsScreen:
    """A C-SSRS screen: the items (1..6) answered yes."""

    id: str
    administered_at: datetime
    positive_items: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        _require_aware(self.administered_at, f"C-SSRS screen {self.id} administered_at")
        items = frozenset(self.positive_items)
        unknown = sorted(item for item in items if item not in CSSRS_ITEMS)
        if unknown:
            raise ValueError(f"C-SSRS screen {self.id}: items {unknown} are not screener items")
        object.__setattr__(self, "positive_items", items)


@dataclass(frozen=True)
class OpenAlert:
    """An alert the alerts service holds open (not yet resolved); only the dose gate reads them."""

    rule_id: str
    severity: Severity

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_ORDER:
            raise ValueError(f"open alert {self.rule_id}: unknown severity {self.severity!r}")


@dataclass(frozen=True)
class SessionSnapshot:
    """One dosing session as known at ``now``; collections are sorted into a canonical order.

    ``timezone`` is the site's (a zoneinfo zone): messages give times on its wall clock with the
    offset; every time in the data stays an aware datetime."""

    dosing_session_id: str
    visit_code: str  # picks the protocol's dosing definition (EXP1, EXP2, ...)
    now: datetime
    timezone: tzinfo = UTC
    started_at: datetime | None = None
    ended_at: datetime | None = None
    readings: Sequence[Reading] = ()
    doses: Sequence[Dose] = ()
    adverse_events: Sequence[AdverseEvent] = ()
    cssrs_screens: Sequence[CssrsScreen] = ()
    open_alerts: Sequence[OpenAlert] = ()

    def __post_init__(self) -> None:
        _require_aware(self.now, "now")
        for name in ("started_at", "ended_at"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(value, name)
        if self.ended_at is not None and (
            self.started_at is None or self.ended_at < self.started_at
        ):
            raise ValueError("ended_at needs a started_at at or before it")
        readings = tuple(sorted(self.readings, key=lambda r: (r.measured_at, r.id)))
        doses = tuple(sorted(self.doses, key=lambda d: (d.administered_at, d.id)))
        events = tuple(sorted(self.adverse_events, key=lambda e: (e.site_aware_at, e.id)))
        screens = tuple(sorted(self.cssrs_screens, key=lambda s: (s.administered_at, s.id)))
        alerts = tuple(sorted(self.open_alerts, key=lambda a: (a.rule_id, a.severity)))
        if datetime(2000, 1, 1, tzinfo=self.timezone).utcoffset() is None:
            raise ValueError(f"timezone {self.timezone!r} gives no offset from UTC")
        _require_unique((r.id for r in readings), "reading")
        _require_unique((d.id for d in doses), "dose")
        _require_unique((e.id for e in events), "adverse event")
        _require_unique((s.id for s in screens), "C-SSRS screen")
        if sum(dose.kind == "initial" for dose in doses) > 1:
            raise ValueError("a dosing session has at most one initial dose")
        if doses and self.started_at is None:
            raise ValueError("doses were given in a session that has no started_at")
        if doses and self.started_at is not None and doses[0].administered_at < self.started_at:
            raise ValueError(f"dose {doses[0].id} was given before the session started")
        object.__setattr__(self, "readings", readings)
        object.__setattr__(self, "_readings_by_id", {r.id: r for r in readings})
        object.__setattr__(self, "doses", doses)
        object.__setattr__(self, "adverse_events", events)
        object.__setattr__(self, "cssrs_screens", screens)
        object.__setattr__(self, "open_alerts", alerts)

    # --- questions every rule asks ----------------------------------------------------------

    def reading(self, reading_id: str) -> Reading | None:
        by_id: dict[str, Reading] = self._readings_by_id  # type: ignore[attr-defined]
        return by_id.get(reading_id)

    def initial_dose(self) -> Dose | None:
        return next((dose for dose in self.doses if dose.kind == "initial"), None)

    def minutes_after_dose(self, at: datetime) -> float | None:
        initial = self.initial_dose()
        if initial is None:
            return None
        return (at - initial.administered_at) / timedelta(minutes=1)

    def in_progress_at(self, at: datetime) -> bool:
        """Started at or before ``at`` and not ended by then."""
        return (
            self.started_at is not None
            and self.started_at <= at
            and (self.ended_at is None or at < self.ended_at)
        )

    # --- the same session as it was known earlier -------------------------------------------

    def as_of(self, at: datetime) -> "SessionSnapshot":
        """What was known at ``at``: everything measured, given, learnt or screened by then.

        Adverse events count from ``site_aware_at``; a sponsor report after ``at`` had not been
        made yet; a session that ended after ``at`` was still running. Open alerts are the
        alerts service's present state, which the snapshot cannot date, so they are left out.
        """
        _require_aware(at, "as_of")

        def known(moment: datetime | None) -> datetime | None:
            return moment if moment is not None and moment <= at else None

        return replace(
            self,
            now=at,
            started_at=known(self.started_at),
            ended_at=known(self.ended_at),
            readings=[r for r in self.readings if r.measured_at <= at],
            doses=[d for d in self.doses if d.administered_at <= at],
            adverse_events=[
                replace(e, sponsor_reported_at=known(e.sponsor_reported_at))
                for e in self.adverse_events
                if e.site_aware_at <= at
            ],
            cssrs_screens=[s for s in self.cssrs_screens if s.administered_at <= at],
            open_alerts=[],
        )
