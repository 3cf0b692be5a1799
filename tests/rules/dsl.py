"""Scripted dosing sessions: a small DSL for the rules engine's scenario tests.

A session is a list of steps at minutes after the initial dose (which is at ``T0``):

    session(
        MDMA,
        baseline(-15),
        dose(0, 120),
        schedule(until=125),                      # routine readings at every due time
        vitals(60, SYSBP=162, DIABP=96),          # changes the values at minute 60
        ae(120, "Syncope", serious=True, grade=3),
        cssrs(300, 2),
        now=125,
    )

Steps at the same minute merge into one reading, later values winning. ``timeline()`` writes the
findings as ``T+60 hypertension-grade-3 warning`` lines (plus the variant, if any), the form the
expected findings of a scenario are written in.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from app.protocols.loader import load_protocol_file
from app.protocols.schema import Protocol
from app.rules import (
    AdverseEvent,
    CssrsScreen,
    Dose,
    Finding,
    OpenAlert,
    Reading,
    SessionSnapshot,
    evaluate,
)
from app.rules.snapshot import DoseKind

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # the initial dose in every scripted session

# Routine readings: what a participant on MDMA might show without any rule firing.
ROUTINE = {"SYSBP": 122.0, "DIABP": 78.0, "PULSE": 76.0, "RESP": 14.0, "OXYSAT": 98.0}
ROUTINE_TEMP = 36.8
BASELINE = {
    "SYSBP": 120.0,
    "DIABP": 78.0,
    "PULSE": 72.0,
    "TEMP": 36.8,
    "RESP": 14.0,
    "OXYSAT": 98.0,
}
# Blood pressure and pulse every 30 min to 4 h, then hourly to 8 h; temperature hourly (the MDMA
# schedule, which covers the psilocybin one too).
DUE_MINUTES = [*range(0, 241, 30), *range(300, 481, 60)]


@cache
def protocol(name: str) -> Protocol:
    return load_protocol_file(ROOT / "protocols" / f"{name}.yaml").protocol


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def minute_of(moment: datetime) -> int:
    return round((moment - T0) / timedelta(minutes=1))


@dataclass(frozen=True)
class Vitals:
    minute: float
    values: dict[str, float]
    oxygen: bool = False
    confusion: bool = False


@dataclass(frozen=True)
class DoseStep:
    minute: float
    mg: float
    kind: DoseKind = "initial"


@dataclass(frozen=True)
class AeStep:
    minute: float  # site aware
    term: str
    serious: bool = False
    grade: int | None = None
    onset_minute: float | None = None
    reported_minute: float | None = None


@dataclass(frozen=True)
class ScreenStep:
    minute: float
    items: frozenset[int]


Step = Vitals | DoseStep | AeStep | ScreenStep


def vitals(
    minute: float, *, oxygen: bool = False, confusion: bool = False, **values: float
) -> Vitals:
    return Vitals(minute, dict(values), oxygen, confusion)


def routine(minute: float, **overrides: float) -> Vitals:
    """Routine values for every measure; temperature on the hour."""
    values = dict(ROUTINE)
    if minute % 60 == 0:
        values["TEMP"] = ROUTINE_TEMP
    return Vitals(minute, {**values, **overrides})


def baseline(minute: float = -15, **overrides: float) -> Vitals:
    return Vitals(minute, {**BASELINE, **overrides})


def schedule(*, until: float, skip: Iterable[float] = ()) -> list[Vitals]:
    """Routine readings at every due time up to ``until``."""
    skipped = set(skip)
    return [routine(m) for m in DUE_MINUTES if m <= until and m not in skipped]


def dose(minute: float, mg: float) -> DoseStep:
    return DoseStep(minute, mg)


def supplemental(minute: float, mg: float) -> DoseStep:
    return DoseStep(minute, mg, "supplemental")


def ae(
    minute: float,
    term: str,
    *,
    serious: bool = False,
    grade: int | None = None,
    onset: float | None = None,
    reported: float | None = None,
) -> AeStep:
    return AeStep(minute, term, serious, grade, onset, reported)


def cssrs(minute: float, *items: int) -> ScreenStep:
    return ScreenStep(minute, frozenset(items))


@dataclass
class Session:
    protocol: Protocol
    steps: list[Step]
    now: float
    visit: str
    started: float = -45
    ended: float | None = None
    open_alerts: list[OpenAlert] = field(default_factory=list)

    def snapshot(self, session_id: str = "S1") -> SessionSnapshot:
        merged: dict[float, Vitals] = {}
        for step in self.steps:
            if isinstance(step, Vitals):
                earlier = merged.get(step.minute)
                if earlier is not None:
                    step = Vitals(
                        step.minute,
                        {**earlier.values, **step.values},
                        step.oxygen or earlier.oxygen,
                        step.confusion or earlier.confusion,
                    )
                merged[step.minute] = step
        readings = [
            Reading(
                f"r{m:g}", at(m), v.values, supplemental_oxygen=v.oxygen, new_confusion=v.confusion
            )
            for m, v in merged.items()
        ]
        doses = [
            Dose(f"d-{s.kind}", s.kind, s.mg, at(s.minute))
            for s in self.steps
            if isinstance(s, DoseStep)
        ]
        events = [
            AdverseEvent(
                id=f"ae{i}",
                verbatim_term=s.term,
                serious=s.serious,
                ctcae_grade=s.grade,
                onset_at=at(s.minute - 10 if s.onset_minute is None else s.onset_minute),
                site_aware_at=at(s.minute),
                sponsor_reported_at=None if s.reported_minute is None else at(s.reported_minute),
            )
            for i, s in enumerate((s for s in self.steps if isinstance(s, AeStep)), start=1)
        ]
        screens = [
            CssrsScreen(f"c{i}", at(s.minute), s.items)
            for i, s in enumerate((s for s in self.steps if isinstance(s, ScreenStep)), start=1)
        ]
        return SessionSnapshot(
            dosing_session_id=session_id,
            visit_code=self.visit,
            now=at(self.now),
            started_at=at(self.started),
            ended_at=None if self.ended is None else at(self.ended),
            readings=readings,
            doses=doses,
            adverse_events=events,
            cssrs_screens=screens,
            open_alerts=self.open_alerts,
        )

    def findings(self) -> list[Finding]:
        return evaluate(self.protocol, self.snapshot())

    def timeline(self) -> list[str]:
        return timeline(self.findings())


def session(
    protocol: Protocol,
    *steps: Step | list[Vitals],
    now: float,
    visit: str | None = None,
    ended: float | None = None,
    started: float = -45,
) -> Session:
    flat: list[Step] = []
    for step in steps:
        flat.extend(step if isinstance(step, list) else [step])
    visit = visit or protocol.dosing.sessions[-1].visit
    return Session(protocol, flat, now, visit, started, ended)


def line(finding: Finding) -> str:
    minute = minute_of(finding.at)
    text = f"T{minute:+d} {finding.rule_id} {finding.severity}"
    return f"{text} {finding.variant}" if finding.variant else text


def timeline(findings: Iterable[Finding]) -> list[str]:
    return [line(f) for f in findings]
