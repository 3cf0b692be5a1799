"""Scripted dosing sessions under the shipped protocols, each with the findings expected.

Together the scenarios fire every rule of protocols/mdma-ptsd-phase3.yaml and of
protocols/psilocybin-single-session.yaml at least once (checked below), and the quiet sessions
fire nothing. Minutes are after the initial dose; see tests/rules/dsl.py for the steps.
"""

from dataclasses import dataclass

import pytest

from app.protocols.schema import Protocol
from app.rules import evaluate
from tests.rules.dsl import (
    Session,
    ae,
    baseline,
    cssrs,
    dose,
    protocol,
    routine,
    schedule,
    session,
    supplemental,
    vitals,
)

MDMA = protocol("mdma-ptsd-phase3")
PSILOCYBIN = protocol("psilocybin-single-session")


@dataclass(frozen=True)
class Scenario:
    name: str
    session: Session
    expected: list[str]

    @property
    def protocol(self) -> Protocol:
        return self.session.protocol


SCENARIOS = [
    # --- MDMA -------------------------------------------------------------------------------
    Scenario(
        "mdma: a quiet session with the usual MDMA rises and a supplemental dose raises nothing",
        session(
            MDMA,
            baseline(-20, SYSBP=118, DIABP=76),
            dose(0, 120),
            schedule(until=480),
            routine(60, SYSBP=142, DIABP=88, PULSE=96, TEMP=37.3),
            routine(90, SYSBP=148, DIABP=90, PULSE=98, TEMP=37.4),
            supplemental(100, 60),
            routine(120, SYSBP=140, DIABP=86, PULSE=94, TEMP=37.5),
            routine(150, SYSBP=146, DIABP=88, PULSE=100),
            routine(180, SYSBP=138, DIABP=84, PULSE=92, TEMP=37.6),
            cssrs(420),
            ended=485,
            now=485,
        ),
        [],
    ),
    Scenario(
        "mdma: the quiet session seen live at T+200",
        session(
            MDMA,
            baseline(-20),
            dose(0, 120),
            schedule(until=200),
            routine(90, PULSE=98, TEMP=37.4),
            supplemental(100, 60),
            now=200,
        ),
        [],
    ),
    Scenario(
        "mdma: blood pressure climbs to a hypertensive crisis and comes down",
        session(
            MDMA,
            baseline(-15, SYSBP=120),
            dose(0, 120),
            schedule(until=125),
            vitals(60, SYSBP=162, DIABP=96, PULSE=88, TEMP=37.1),
            vitals(90, SYSBP=184, DIABP=122, PULSE=92),
            vitals(120, SYSBP=150, DIABP=94, PULSE=90, TEMP=37.2),
            now=125,
        ),
        [
            "T+60 hypertension-grade-3 critical",
            "T+60 sbp-rise-from-baseline warning",
            "T+90 hypertension-grade-3 critical",
            "T+90 hypertensive-crisis critical",
            "T+90 sbp-rise-from-baseline warning",
        ],
    ),
    Scenario(
        "mdma: temperature rises fast into grade 2 fever",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=95),
            vitals(60, TEMP=38.1),
            vitals(90, TEMP=39.2),
            now=95,
        ),
        [
            "T+60 fever-grade-1 warning",
            "T+60 temperature-rising warning",
            "T+90 fever-grade-1 warning",
            "T+90 fever-grade-2 critical",
            "T+90 temperature-rising warning",
        ],
    ),
    Scenario(
        "mdma: pulse stays above 110, a BP-only reading does not break the run, then 133",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=125),
            vitals(30, PULSE=112),
            vitals(60, PULSE=116),
            vitals(90, PULSE=124),
            vitals(100, SYSBP=130, DIABP=82),
            vitals(120, PULSE=133),
            now=125,
        ),
        [
            "T+90 sustained-tachycardia warning",
            "T+120 news2 critical",
            "T+120 sustained-tachycardia warning",
            "T+120 tachycardia-news2-3 critical",
        ],
    ),
    Scenario(
        "mdma: hypotension, then NEWS2 in the emergency range, then oxygen and confusion",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=125),
            vitals(60, SYSBP=88, DIABP=55),
            vitals(90, RESP=26, OXYSAT=93, PULSE=108, SYSBP=104),
            vitals(120, oxygen=True, confusion=True),
            now=125,
        ),
        [
            "T+60 hypotension-news2-3 critical",
            "T+60 news2 critical",
            "T+90 low-spo2-news2-2 warning",
            "T+90 news2 critical",
            "T+120 news2 critical",
        ],
    ),
    Scenario(
        "mdma: a pulse missed at T+30, nothing at T+60 (live at T+80)",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            routine(0),
            vitals(30, SYSBP=124, DIABP=80),
            now=80,
        ),
        [
            "T+40 overdue-bp-pulse warning",
            "T+70 overdue-bp-pulse warning",
            "T+75 overdue-temperature warning",
        ],
    ),
    Scenario(
        "mdma: nothing is overdue after the session ended (at T+72)",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            routine(0),
            routine(30),
            ended=72,
            now=300,
        ),
        ["T+70 overdue-bp-pulse warning"],
    ),
    Scenario(
        "mdma: nothing is due before the initial dose",
        session(MDMA, baseline(-15), now=-1, started=-45),
        [],
    ),
    Scenario(
        "mdma: the supplemental dose given while pulse was 114 (the gate was closed)",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=100),
            vitals(90, PULSE=114, TEMP=37.4),
            supplemental(95, 60),
            now=100,
        ),
        ["T+95 supplemental-dose-gate warning given-while-closed"],
    ),
    Scenario(
        "mdma: a serious syncope never reported, a serious AE reported in time, a headache",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=480),
            ae(120, "Syncope", serious=True, grade=3),
            ae(200, "Palpitations", serious=True, grade=1, reported=600),
            ae(300, "Headache", grade=1),
            ended=485,
            now=120 + 25 * 60,
        ),
        [
            "T+120 ae-grade-3-or-higher warning",
            "T+120 ae-of-special-interest warning",
            "T+120 serious-adverse-event critical",
            "T+200 ae-of-special-interest warning",
            "T+200 serious-adverse-event critical",
            "T+1200 serious-adverse-event warning deadline-near",
            "T+1560 serious-adverse-event critical deadline-passed",
        ],
    ),
    Scenario(
        "mdma: a severe but not serious AE; euphoric mood is of special interest",
        session(
            MDMA,
            baseline(-15),
            dose(0, 80),
            schedule(until=200),
            ae(150, "Severe nausea and vomiting", grade=3),
            ae(180, "EUPHORIC MOOD", grade=1),
            visit="EXP1",
            now=200,
        ),
        [
            "T+150 ae-grade-3-or-higher warning",
            "T+180 ae-of-special-interest warning",
        ],
    ),
    Scenario(
        "mdma: C-SSRS ideation, then intent with a plan, then a negative screen",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=470),
            cssrs(300, 2),
            cssrs(420, 1, 5),
            cssrs(460),
            now=470,
        ),
        [
            "T+300 cssrs-ideation warning",
            "T+420 cssrs-high-risk critical",
            "T+420 cssrs-ideation warning",
        ],
    ),
    Scenario(
        "mdma: no pre-dose baseline (the only reading is 70 min before the dose)",
        session(
            MDMA,
            baseline(-70),
            dose(0, 120),
            schedule(until=100, skip=[0]),
            routine(5, TEMP=36.9),  # after the dose, so no baseline; meets the T+0 due time
            vitals(60, SYSBP=165),
            now=100,
            started=-90,
        ),
        [
            "T+0 sbp-rise-from-baseline info no-baseline",
            "T+60 hypertension-grade-3 critical",
        ],
    ),
    # --- MDMA: the published scales (DESIGN.md "Published scales") ----------------------------
    Scenario(
        "mdma: a quiet 120 mg session measuring SpO2 and respiration raises nothing",
        session(
            MDMA,
            baseline(-20, SYSBP=118, DIABP=76),
            dose(0, 120),
            schedule(until=240),
            routine(60, SYSBP=146, DIABP=90, PULSE=98, TEMP=37.4, RESP=18, OXYSAT=96),
            routine(90, SYSBP=152, DIABP=94, PULSE=102, RESP=18, OXYSAT=96),
            routine(120, SYSBP=150, DIABP=92, PULSE=100, TEMP=37.5, RESP=16, OXYSAT=97),
            routine(180, SYSBP=140, DIABP=86, PULSE=94, TEMP=37.5),
            now=240,
        ),
        [],
    ),
    Scenario(
        "mdma: CTCAE grade 3 hypertension is critical at the first reading of SBP 160",
        session(
            MDMA,
            baseline(-15, SYSBP=125),
            dose(0, 120),
            schedule(until=125),
            vitals(60, SYSBP=158, DIABP=94),
            vitals(90, SYSBP=160, DIABP=96),
            vitals(120, SYSBP=154, DIABP=92),
            now=125,
        ),
        ["T+90 hypertension-grade-3 critical"],
    ),
    Scenario(
        "mdma: CTCAE grade 3 hypertension on a diastolic of 100 alone is critical",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=65),
            vitals(30, SYSBP=138, DIABP=99),
            vitals(60, SYSBP=140, DIABP=100),
            now=65,
        ),
        ["T+60 hypertension-grade-3 critical"],
    ),
    Scenario(
        "mdma: SpO2 93 is a warning, SpO2 91 critical (NEWS2 scale 1)",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=95),
            vitals(30, OXYSAT=94),
            vitals(60, OXYSAT=93),
            vitals(90, OXYSAT=91),
            now=95,
        ),
        [
            "T+60 low-spo2-news2-2 warning",
            "T+90 hypoxia-news2-3 critical",
            "T+90 low-spo2-news2-2 warning",
            "T+90 news2 critical",
        ],
    ),
    Scenario(
        "mdma: NEWS2 a single parameter scoring 3 (respiration 25) is critical",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=65),
            vitals(30, RESP=24),
            vitals(60, RESP=25),
            now=65,
        ),
        ["T+60 news2 critical"],
    ),
    Scenario(
        "mdma: NEWS2 total 5 with no single 3 is critical (4 the reading before is not)",
        session(
            MDMA,
            baseline(-15),
            dose(0, 120),
            schedule(until=65),
            vitals(30, PULSE=105, RESP=22, OXYSAT=95),
            vitals(60, PULSE=112, RESP=22, OXYSAT=95),
            now=65,
        ),
        ["T+60 news2 critical"],
    ),
    # --- psilocybin -------------------------------------------------------------------------
    Scenario(
        "psilocybin: SpO2 is watched where a site measures it",
        session(
            PSILOCYBIN,
            baseline(-15),
            dose(0, 25),
            schedule(until=65),
            vitals(30, OXYSAT=93),
            vitals(60, OXYSAT=90),
            now=65,
        ),
        [
            "T+30 low-spo2-news2-2 warning",
            "T+60 hypoxia-news2-3 critical",
            "T+60 low-spo2-news2-2 warning",
        ],
    ),
    Scenario(
        "psilocybin: a quiet session",
        session(
            PSILOCYBIN,
            baseline(-15),
            dose(0, 25),
            schedule(until=420),
            routine(60, SYSBP=138, DIABP=88, PULSE=92),
            ended=425,
            now=425,
        ),
        [],
    ),
    Scenario(
        "psilocybin: hypertension, tachycardia, a missed reading, psychosis, SAE, C-SSRS",
        session(
            PSILOCYBIN,
            baseline(-15),
            dose(0, 25),
            schedule(until=240, skip=[120]),
            vitals(60, SYSBP=170, DIABP=102),
            vitals(90, SYSBP=182, PULSE=135),
            ae(150, "Transient psychosis", grade=2),
            ae(160, "Hospitalised for observation", serious=True, grade=2, reported=300),
            cssrs(200, 4),
            now=240,
        ),
        [
            "T+60 hypertension-grade-3 critical",
            "T+90 hypertension-grade-3 critical",
            "T+90 hypertensive-crisis critical",
            "T+90 tachycardia-news2-3 critical",
            "T+130 overdue-vitals warning",
            "T+150 ae-of-special-interest warning",
            "T+160 serious-adverse-event critical",
            "T+200 cssrs-high-risk critical",
        ],
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    assert scenario.session.timeline() == scenario.expected


@pytest.mark.parametrize("protocol_", [MDMA, PSILOCYBIN], ids=lambda p: p.protocol.id)
def test_scenarios_fire_every_rule_of_the_protocol(protocol_: Protocol) -> None:
    fired = {
        line.split()[1]
        for scenario in SCENARIOS
        if scenario.protocol is protocol_
        for line in scenario.expected
    }
    assert fired == {rule.id for rule in protocol_.rules}


def test_scenarios_cover_every_rule_kind() -> None:
    kinds = {
        scenario.protocol.rule(line.split()[1]).kind
        for scenario in SCENARIOS
        for line in scenario.expected
    }
    assert kinds == {rule.kind for rule in MDMA.rules}
    assert len(kinds) == 9


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.expected], ids=lambda s: s.name)
def test_quiet_sessions_raise_nothing_at_any_moment(scenario: Scenario) -> None:
    """Evaluated as known at 100 moments from its start to now, a quiet session stays quiet."""
    snapshot = scenario.session.snapshot()
    assert snapshot.started_at is not None
    moment = snapshot.started_at
    while moment <= snapshot.now:
        assert evaluate(scenario.protocol, snapshot.as_of(moment)) == [], moment
        moment += (snapshot.now - snapshot.started_at) / 100
