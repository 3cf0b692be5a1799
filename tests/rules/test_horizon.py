"""The readings an evaluation since t needs (app/rules/horizon.py), on scripted sessions: the
window leaves older readings out where that changes nothing, and says it is not enough where a
sustained run or a dose gate looks further back."""

from app.rules import evaluate
from app.rules.horizon import lookback
from tests.rules.dsl import at, baseline, dose, protocol, routine, session, supplemental, vitals
from tests.rules.test_properties import windowed

MDMA = protocol("mdma-ptsd-phase3")


def every_5_min(until: int, **overrides: float) -> list:
    return [routine(minute, **overrides) for minute in range(0, until + 1, 5)]


def test_the_lookback_is_the_longest_rate_window_or_twice_the_longest_grace() -> None:
    rate = max(rule.within_minutes for rule in MDMA.rules_of_kind("rate_of_change"))
    grace = max(each.grace_minutes for each in MDMA.vitals_schedule.intervals)
    assert lookback(MDMA).total_seconds() / 60 == max(rate, 2 * grace)


def test_a_routine_session_is_judged_on_its_recent_readings_and_the_baseline() -> None:
    snapshot = session(
        MDMA, baseline(-15), dose(0, 120), every_5_min(240), vitals(238, PULSE=150), now=241
    ).snapshot()
    part, enough = windowed(MDMA, snapshot, at(238))
    assert enough
    ids = [r.id for r in part.readings]
    assert "r-15" in ids and "r5" not in ids and "r175" not in ids and "r180" in ids
    assert len(part.readings) < len(snapshot.readings) / 2
    since = evaluate(MDMA, snapshot, since=at(238))
    assert since and evaluate(MDMA, part, since=at(238)) == since


def test_a_run_begun_before_the_window_needs_the_whole_session() -> None:
    # pulse above 110 from T+30 on: the run at T+240 began long before the lookback
    snapshot = session(
        MDMA,
        baseline(-15),
        dose(0, 120),
        every_5_min(25),
        every_5_min(240, PULSE=118)[6:],
        now=241,
    ).snapshot()
    part, enough = windowed(MDMA, snapshot, at(240))
    assert not enough
    # and rightly: the window alone would count a shorter run
    whole = [f for f in evaluate(MDMA, snapshot, since=at(240)) if f.kind == "sustained"]
    cut = [f for f in evaluate(MDMA, part, since=at(240)) if f.kind == "sustained"]
    assert whole[0].observed["run_readings"] == 43
    assert cut[0].observed["run_readings"] < 43


def test_a_supplemental_dose_since_t_needs_the_whole_session() -> None:
    snapshot = session(
        MDMA, baseline(-15), dose(0, 120), every_5_min(240), supplemental(120, 60), now=241
    ).snapshot()
    assert windowed(MDMA, snapshot, at(100))[1] is False
    assert windowed(MDMA, snapshot, at(125))[1] is True
