"""Properties of the engine over generated sessions (hypothesis), under both shipped protocols."""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app.clinical.measures import MEASURES
from app.protocols.schema import Condition, Protocol, SustainedRule, ThresholdRule
from app.rules import (
    AdverseEvent,
    CssrsScreen,
    Dose,
    Finding,
    Reading,
    SessionSnapshot,
    evaluate,
    evaluate_rule,
    overdue_between,
    overdue_moments,
    replay,
)
from app.rules.horizon import reading_window, window_suffices
from tests.rules.dsl import at, protocol
from tests.rules.reference import NEWS2_STEP, news2_zero_band

MDMA = protocol("mdma-ptsd-phase3")
PSILOCYBIN = protocol("psilocybin-single-session")
PROTOCOLS = {"mdma": MDMA, "psilocybin": PSILOCYBIN}
CODES = list(MEASURES)
CLOCK_VARIANTS = {"deadline-near", "deadline-passed"}
property_test = settings(database=None, deadline=None, max_examples=60)

# Values that cross the shipped protocols' limits often.
INTERESTING = {
    "SYSBP": (80.0, 200.0),
    "DIABP": (50.0, 130.0),
    "PULSE": (35.0, 150.0),
    "RESP": (6.0, 30.0),
    "OXYSAT": (85.0, 100.0),
    "TEMP": (34.5, 40.5),
}
# Values about the limits, as a monitored session has: runs begin and break.
ROUTINE = {
    "SYSBP": (100.0, 175.0),
    "DIABP": (60.0, 110.0),
    "PULSE": (55.0, 125.0),
    "RESP": (10.0, 24.0),
    "OXYSAT": (92.0, 100.0),
    "TEMP": (36.0, 38.6),
}
Ranges = dict[str, tuple[float, float]]


def resolution(code: str) -> float:
    return 0.1 if MEASURES[code].decimals else 1.0


def value_in(code: str, low: float, high: float) -> st.SearchStrategy[float]:
    step = resolution(code)
    return st.integers(round(low / step), round(high / step)).map(lambda n: round(n * step, 1))


@st.composite
def readings(
    draw: st.DrawFn, ranges: Ranges, flags: bool = True, dense: bool = False
) -> list[Reading]:
    if dense:  # most of a monitor's 5-minute grid, as a session really has
        grid = range(-60 * 60, 480 * 60 + 1, 5 * 60)
        seconds = draw(st.lists(st.sampled_from(grid), min_size=30, max_size=100, unique=True))
    else:
        seconds = draw(st.lists(st.integers(-60 * 60, 480 * 60), max_size=20))
    out = []
    for i, second in enumerate(seconds):
        codes = draw(st.sets(st.sampled_from(CODES), min_size=1))
        values = {code: draw(value_in(code, *ranges[code])) for code in CODES if code in codes}
        oxygen = flags and draw(st.integers(0, 9)) == 0
        confusion = flags and draw(st.integers(0, 9)) == 0
        out.append(
            Reading(
                f"r{i}",
                at(0) + timedelta(seconds=second),
                values,
                supplemental_oxygen=oxygen,
                new_confusion=confusion,
            )
        )
    return out


TERMS = ["Syncope", "headache", "Chest pain", "nausea", "EUPHORIC MOOD", "Psychosis", "seizures"]


@st.composite
def sessions(
    draw: st.DrawFn,
    protocol_: Protocol,
    ranges: Ranges = INTERESTING,
    flags: bool = True,
    dense: bool = False,
) -> SessionSnapshot:
    definition = protocol_.dosing.sessions[-1]
    doses = []
    dose_minute = draw(st.none() | st.integers(-10, 30))
    if dose_minute is not None:
        doses.append(Dose("d1", "initial", definition.initial_mg[0], at(dose_minute)))
        if definition.supplemental is not None and draw(st.booleans()):
            mg = definition.supplemental_mg(definition.initial_mg[0])
            assert mg is not None
            doses.append(Dose("d2", "supplemental", mg, at(draw(st.integers(40, 200)))))
    events = []
    for i in range(draw(st.integers(0, 3))):
        aware = draw(st.integers(0, 600))
        reported = draw(st.none() | st.integers(aware, aware + 2000))
        events.append(
            AdverseEvent(
                f"ae{i}",
                draw(st.sampled_from(TERMS)),
                draw(st.booleans()),
                draw(st.none() | st.integers(1, 5)),
                at(aware - 10),
                at(aware),
                None if reported is None else at(reported),
            )
        )
    screens = [
        CssrsScreen(f"c{i}", at(draw(st.integers(0, 480))), draw(st.frozensets(st.integers(1, 6))))
        for i in range(draw(st.integers(0, 2)))
    ]
    ended = draw(st.none() | st.integers(60, 520))
    return SessionSnapshot(
        dosing_session_id="S1",
        visit_code=definition.visit,
        now=at(
            draw(st.integers(0, 3000)) if ended is None else max(ended, draw(st.integers(0, 3000)))
        ),
        started_at=at(-90),
        ended_at=None if ended is None else at(ended),
        readings=draw(readings(ranges, flags, dense)),
        doses=doses,
        adverse_events=events,
        cssrs_screens=screens,
    )


def keys(findings: list[Finding], rule_ids: set[str]) -> set[tuple[str, Any, tuple[str, ...]]]:
    return {(f.rule_id, f.at, f.evidence) for f in findings if f.rule_id in rule_ids}


def protocol_and_session(**kwargs: Any) -> st.SearchStrategy[tuple[Protocol, SessionSnapshot]]:
    return st.sampled_from(list(PROTOCOLS.values())).flatmap(
        lambda p: st.tuples(st.just(p), sessions(p, **kwargs))
    )


# --- determinism and order --------------------------------------------------------------------


@property_test
@given(case=protocol_and_session(), data=st.data())
def test_same_input_same_findings_whatever_the_order_given(case, data) -> None:
    protocol_, snapshot = case
    findings = evaluate(protocol_, snapshot)
    assert evaluate(protocol_, snapshot) == findings
    shuffled = replace(
        snapshot,
        readings=data.draw(st.permutations(snapshot.readings)),
        doses=data.draw(st.permutations(snapshot.doses)),
        adverse_events=data.draw(st.permutations(snapshot.adverse_events)),
        cssrs_screens=data.draw(st.permutations(snapshot.cssrs_screens)),
    )
    assert evaluate(protocol_, shuffled) == findings


@property_test
@given(case=protocol_and_session())
def test_findings_are_sorted_and_well_formed(case) -> None:
    protocol_, snapshot = case
    findings = evaluate(protocol_, snapshot)
    assert findings == sorted(findings, key=Finding.sort_key)
    info = protocol_.protocol
    for f in findings:
        rule = protocol_.rule(f.rule_id)
        assert (f.protocol_id, f.protocol_version, f.kind) == (info.id, info.version, rule.kind)
        assert f.dedup_key.startswith(f"S1:{f.rule_id}")
        assert f.message and f.message[0].isupper() and f.message.endswith(".")
        if f.kind == "overdue_measurement" or f.variant in CLOCK_VARIANTS:
            assert f.at < snapshot.now  # a clock finding fires once now is past its moment


@property_test
@given(case=protocol_and_session())
def test_every_finding_names_its_session_rule_and_record_in_a_typed_key(case) -> None:
    """Callers read the key's parts; none parses the text, which is only what alerts store."""
    protocol_, snapshot = case
    for f in evaluate(protocol_, snapshot):
        assert (f.key.dosing_session_id, f.key.rule_id) == (snapshot.dosing_session_id, f.rule_id)
        assert f.dedup_key == str(f.key)
        if f.kind in ("adverse_event", "cssrs"):
            assert f.key.record_id == f.evidence[0]
            assert f.key.part == ("reporting" if f.variant in CLOCK_VARIANTS else None)


# --- the timeline: evaluating as known at t is the prefix, replay is stepping -----------------


@property_test
@given(case=protocol_and_session(), minute=st.integers(-100, 3000))
def test_what_was_known_at_t_gives_the_findings_up_to_t(case, minute) -> None:
    protocol_, snapshot = case
    t = at(minute)
    whole = evaluate(protocol_, replace(snapshot, now=t))
    assert evaluate(protocol_, snapshot.as_of(t)) == [f for f in whole if f.at <= t]


def windowed(
    protocol_: Protocol, snapshot: SessionSnapshot, since: datetime
) -> tuple[SessionSnapshot, bool]:
    """The snapshot with the readings of the rules' lookback since ``since`` only, and whether
    that is enough (as the alerts service builds it from the database)."""
    window = reading_window(protocol_, since, snapshot.doses)
    if window is None:
        return snapshot, False
    kept = [r for r in snapshot.readings if window.holds(r.measured_at)]
    part = replace(snapshot, readings=kept)
    return part, window_suffices(protocol_, part, since, window)


@settings(database=None, deadline=None, max_examples=200)
@given(
    case=st.one_of(protocol_and_session(), protocol_and_session(ranges=ROUTINE, dense=True)),
    minute=st.integers(-100, 600),
    data=st.data(),
)
def test_the_findings_since_t_need_only_the_readings_of_the_rules_lookback(
    case, minute, data
) -> None:
    """Where the window says it is enough, the findings since t of the recent readings are
    those of the whole session: nothing is lost or changed by leaving older readings out."""
    protocol_, snapshot = case
    moments = [r.measured_at for r in snapshot.readings]
    t = data.draw(st.sampled_from(moments)) if moments and data.draw(st.booleans()) else at(minute)
    part, enough = windowed(protocol_, snapshot, t)
    event(f"the window is enough: {enough}")
    if enough:
        assert evaluate(protocol_, part, since=t) == evaluate(protocol_, snapshot, since=t)


@property_test
@given(case=protocol_and_session(), minute=st.integers(-100, 3000), data=st.data())
def test_the_findings_since_t_are_those_of_the_whole_evaluation_from_t_on(
    case, minute, data
) -> None:
    """What the alerts service asks after new readings: no finding from t on is lost or
    changed by skipping the readings before t. t is any time, or exactly a reading's."""
    protocol_, snapshot = case
    moments = [r.measured_at for r in snapshot.readings]
    t = data.draw(st.sampled_from(moments)) if moments and data.draw(st.booleans()) else at(minute)
    whole = evaluate(protocol_, snapshot)
    assert evaluate(protocol_, snapshot, since=t) == [f for f in whole if f.at >= t]
    for rule in protocol_.rules:
        every = evaluate_rule(protocol_, rule, snapshot)
        assert evaluate_rule(protocol_, rule, snapshot, since=t) == [f for f in every if f.at >= t]


@property_test
@given(case=protocol_and_session())
def test_an_overdue_finding_begins_only_at_a_moment_the_schedule_fixes(case) -> None:
    protocol_, snapshot = case
    overdue = [f for f in evaluate(protocol_, snapshot) if f.kind == "overdue_measurement"]
    initial = snapshot.initial_dose()
    if initial is None:
        assert overdue == []
        return
    assert {f.at for f in overdue} <= set(overdue_moments(protocol_, initial.administered_at))


@property_test
@given(case=protocol_and_session(), steps=st.lists(st.integers(0, 400), min_size=1, max_size=8))
def test_sweeping_from_the_last_sweep_on_finds_what_one_sweep_at_the_end_finds(case, steps) -> None:
    """What the scheduler does with the same data as the clock moves: a first sweep of the whole
    session, then each one from the last on, skipped when no overdue moment lies between. A step
    of 0 sweeps exactly at the next moment, where an off-by-one would lose a finding."""
    protocol_, snapshot = case
    rules = protocol_.rules_of_kind("overdue_measurement")
    initial = snapshot.initial_dose()
    moments = [] if initial is None else overdue_moments(protocol_, initial.administered_at)

    def found(now: datetime, since: datetime | None) -> set[str]:
        known = replace(snapshot, now=now)
        return {
            f.occurrence_key for rule in rules for f in evaluate_rule(protocol_, rule, known, since)
        }

    swept_until = at(-90)
    seen = found(swept_until, None)
    for minutes in steps:
        upcoming = [moment for moment in moments if moment > swept_until]
        if minutes == 0 and upcoming:
            now = upcoming[0]
        else:
            now = swept_until + timedelta(minutes=max(minutes, 1))
        if initial is not None and overdue_between(
            protocol_, initial.administered_at, swept_until, now
        ):
            seen |= found(now, swept_until)
        else:
            assert found(now, swept_until) == set()  # skipping it misses nothing
        swept_until = now
    assert seen == found(swept_until, None)


@settings(database=None, deadline=None, max_examples=25)
@given(case=protocol_and_session())
def test_replay_is_stepping_now_through_the_session(case) -> None:
    protocol_, snapshot = case
    snapshot = replace(
        snapshot, ended_at=snapshot.ended_at or at(500), now=max(snapshot.now, at(500))
    )
    seen: dict[str, Finding] = {}
    moment = at(-90)
    while moment <= snapshot.now:
        for f in evaluate(protocol_, snapshot.as_of(moment)):
            seen.setdefault(f.occurrence_key, f)
        moment += timedelta(minutes=13)
    last = moment - timedelta(minutes=13)
    replayed = [f for f in replay(protocol_, snapshot) if f.at <= last]
    stepped = sorted(seen.values(), key=Finding.sort_key)
    # a clock finding is seen by a step only once now is past it; the replay sees it at `last`
    assert [f.occurrence_key for f in stepped] == [
        f.occurrence_key
        for f in replayed
        if not ((f.kind == "overdue_measurement" or f.variant in CLOCK_VARIANTS) and f.at == last)
    ]


# --- monotonicity -----------------------------------------------------------------------------


def _direction(rule: ThresholdRule | SustainedRule) -> str | None:
    ops = {c.op for c in rule.when.conditions}
    if ops <= {">", ">="}:
        return "up"
    if ops <= {"<", "<="}:
        return "down"
    return None


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_the_shipped_protocols_have_rules_in_both_directions_or_up(name: str) -> None:
    directions = {
        _direction(r) for r in PROTOCOLS[name].rules if isinstance(r, ThresholdRule | SustainedRule)
    }
    assert "up" in directions and None not in directions


@property_test
@given(case=protocol_and_session(), data=st.data())
def test_moving_a_value_past_a_limit_never_removes_a_finding(case, data) -> None:
    """Raising a value keeps every finding of the >=/> rules; lowering keeps the <=/< ones'."""
    protocol_, snapshot = case
    if not snapshot.readings:
        return
    index = data.draw(st.integers(0, len(snapshot.readings) - 1))
    reading = snapshot.readings[index]
    code = data.draw(st.sampled_from(list(reading.values)))
    measure, direction = MEASURES[code], data.draw(st.sampled_from(["up", "down"]))
    delta = data.draw(st.floats(0.1, 60)) * (1 if direction == "up" else -1)
    moved = min(max(reading.values[code] + delta, measure.possible_min), measure.possible_max)
    changed = replace(reading, values={**reading.values, code: round(moved, 1)})
    readings = [*snapshot.readings[:index], changed, *snapshot.readings[index + 1 :]]
    rules = {
        r.id
        for r in protocol_.rules
        if isinstance(r, ThresholdRule | SustainedRule) and _direction(r) == direction
    }
    before = keys(evaluate(protocol_, snapshot), rules)
    after = keys(evaluate(protocol_, replace(snapshot, readings=readings)), rules)
    assert before <= after


@property_test
@given(
    pulses=st.lists(st.integers(100, 140), min_size=3, max_size=12),
    index=st.integers(0, 11),
    raise_by=st.integers(1, 40),
)
def test_raising_a_pulse_never_breaks_a_sustained_run(pulses, index, raise_by) -> None:
    rule = MDMA.rule("sustained-tachycardia")
    index %= len(pulses)
    raised = [*pulses[:index], pulses[index] + raise_by, *pulses[index + 1 :]]

    def found(values: list[int]) -> set[tuple[str, Any, tuple[str, ...]]]:
        readings = [Reading(f"r{i}", at(5 * i), {"PULSE": v}) for i, v in enumerate(values)]
        snapshot = SessionSnapshot("S1", "EXP2", now=at(100), readings=readings)
        return keys(evaluate_rule(MDMA, rule, snapshot), {rule.id})

    assert found(pulses) <= found(raised)


# --- a session inside every limit is quiet ----------------------------------------------------


def normal_ranges(protocol_: Protocol) -> Ranges:
    """Where no threshold or sustained condition holds and every NEWS2 parameter scores 0."""
    ranges = {}
    for code, measure in MEASURES.items():
        low, high = news2_zero_band(code) if code in NEWS2_STEP else (-1e9, 1e9)
        ranges[code] = (max(low, measure.possible_min), min(high, measure.possible_max))
    conditions: list[Condition] = [
        c
        for r in protocol_.rules
        if isinstance(r, ThresholdRule | SustainedRule)
        for c in r.when.conditions
    ]
    for c in conditions:
        low, high = ranges[c.measure]
        step = resolution(c.measure)
        if c.op == ">=":
            high = min(high, c.value - step)
        elif c.op == ">":
            high = min(high, c.value)
        elif c.op == "<=":
            low = max(low, c.value + step)
        else:
            low = max(low, c.value)
        ranges[c.measure] = (low, high)
    return ranges


def test_the_normal_region_of_the_mdma_protocol() -> None:
    assert normal_ranges(MDMA) == {
        "SYSBP": (111, 159),
        "DIABP": (15, 99),
        "PULSE": (51, 90),
        "RESP": (12, 20),
        "TEMP": (36.1, 37.9),
        "OXYSAT": (96, 100),
    }


@property_test
@given(
    case=st.sampled_from(list(PROTOCOLS.values())).flatmap(
        lambda p: st.tuples(st.just(p), sessions(p, ranges=normal_ranges(p), flags=False))
    )
)
def test_readings_within_every_limit_raise_no_vitals_finding(case) -> None:
    protocol_, snapshot = case
    vitals_kinds = {"threshold", "sustained", "composite_score"}
    assert [f for f in evaluate(protocol_, snapshot) if f.kind in vitals_kinds] == []
