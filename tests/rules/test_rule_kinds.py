"""Each rule kind's semantics at its edges, on small protocols made for the purpose.

The shipped protocols are exercised in test_scenarios.py. That protocol loading refuses an
unknown measure, an empty condition group or a unit mismatch is tested in tests/protocols
(test_schema.py and the broken/ files of test_loader.py), so the engine never sees such a rule.
"""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clinical.measures import MEASURES
from app.protocols.schema import Protocol
from app.rules import DedupKey, Finding, evaluate, evaluate_rule, replay
from app.rules.overdue import DueTime, due_times
from tests.rules.dsl import (
    ae,
    at,
    baseline,
    cssrs,
    dose,
    protocol,
    routine,
    session,
    timeline,
    vitals,
)

MDMA = protocol("mdma-ptsd-phase3")


def cond(measure: str, op: str, value: float) -> dict[str, Any]:
    return {"measure": measure, "op": op, "value": value, "unit": MEASURES[measure].unit}


def rule(rule_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "kind": kind,
        "severity": "warning",
        "title": "A test rule.",
        "source": "tests",
        **fields,
    }


def with_rules(*rules: dict[str, Any], version: str = "1.0") -> Protocol:
    data = MDMA.model_dump(mode="json")
    data["rules"] = list(rules)
    data["protocol"]["version"] = version
    return Protocol.model_validate(data)


def lines(protocol_: Protocol, *steps: Any, now: float, **kwargs: Any) -> list[str]:
    return session(protocol_, *steps, now=now, **kwargs).timeline()


def findings(protocol_: Protocol, *steps: Any, now: float, **kwargs: Any) -> list[Finding]:
    return session(protocol_, *steps, now=now, **kwargs).findings()


# --- threshold ----------------------------------------------------------------------------------

ALL_GROUP = with_rules(
    rule(
        "fast-and-low",
        "threshold",
        when={"all": [cond("PULSE", ">", 100), cond("OXYSAT", "<", 94)]},
    )
)


def test_an_all_group_needs_every_measure_present_and_met() -> None:
    assert lines(
        ALL_GROUP,
        vitals(10, PULSE=120),  # SpO2 missing: not met
        vitals(20, PULSE=120, OXYSAT=95),  # SpO2 present, not low
        vitals(30, PULSE=120, OXYSAT=93),
        now=40,
    ) == ["T+30 fast-and-low warning"]


def test_an_all_group_finding_names_every_condition() -> None:
    [finding] = findings(ALL_GROUP, vitals(30, PULSE=120, OXYSAT=93), now=40)
    assert finding.message == (
        "Pulse 120 beats/min is above 100 beats/min and SpO2 93% is below 94% at 09:30 (UTC+00:00)."
    )
    assert dict(finding.observed) == {"PULSE": 120.0, "OXYSAT": 93.0}
    assert finding.thresholds == ("PULSE > 100 beats/min", "OXYSAT < 94%")


def test_an_any_group_fires_on_the_measure_present() -> None:
    [finding] = findings(MDMA, vitals(30, DIABP=104), now=31)  # no dose: no overdue
    assert finding.rule_id == "hypertension-grade-3"
    assert finding.message == "Diastolic BP 104 mmHg is at or above 100 mmHg at 09:30 (UTC+00:00)."
    assert dict(finding.observed) == {"DIABP": 104.0}


def test_every_reading_that_meets_a_threshold_is_a_finding_of_one_problem() -> None:
    found = [
        f
        for f in findings(MDMA, vitals(30, SYSBP=165), vitals(40, SYSBP=168), now=41)
        if f.rule_id == "hypertension-grade-3"
    ]
    assert [f.at for f in found] == [at(30), at(40)]
    assert {f.dedup_key for f in found} == {"S1:hypertension-grade-3"}
    assert len({f.occurrence_key for f in found}) == 2


def test_a_finding_carries_the_protocol_version_and_the_rule() -> None:
    crisis = next(
        f
        for f in findings(MDMA, baseline(-15), dose(0, 120), routine(0, SYSBP=182), now=1)
        if f.rule_id == "hypertensive-crisis"
    )
    assert (crisis.protocol_id, crisis.protocol_version) == ("mdma-ptsd-phase3", "1.4")
    assert crisis.kind == "threshold"
    assert crisis.severity == "critical"
    assert crisis.title == MDMA.rule("hypertensive-crisis").title
    assert crisis.evidence == ("r0",)
    assert crisis.as_dict()["at"] == "2026-03-10T09:00:00+00:00"


# --- sustained ----------------------------------------------------------------------------------


def test_sustained_for_a_duration_counts_from_the_first_reading_of_the_run() -> None:
    p = with_rules(
        rule(
            "fever-30-min",
            "sustained",
            when={"any": [cond("TEMP", ">=", 38.0)]},
            duration_minutes=30,
        )
    )
    assert lines(
        p,
        vitals(0, TEMP=38.1),
        vitals(20, TEMP=38.3),
        vitals(25, PULSE=90),  # no temperature: neither continues nor breaks the run
        vitals(30, TEMP=38.2),
        vitals(40, TEMP=37.6),  # breaks it
        vitals(50, TEMP=38.4),
        vitals(79, TEMP=38.4),
        vitals(80, TEMP=38.5),
        now=90,
    ) == ["T+30 fever-30-min warning", "T+80 fever-30-min warning"]


def test_sustained_message_and_evidence() -> None:
    p = with_rules(
        rule("tachy", "sustained", when={"any": [cond("PULSE", ">", 110)]}, consecutive_readings=2)
    )
    [first, second] = findings(
        p, vitals(0, PULSE=112), vitals(10, PULSE=115), vitals(20, PULSE=118), now=30
    )
    assert first.evidence == ("r0", "r10")
    assert second.evidence == ("r10", "r20")  # the readings the rule compared
    assert second.observed["run_readings"] == 3
    assert second.message == (
        "Pulse above 110 beats/min on 3 readings in a row, from 09:00 (UTC+00:00) to 09:20 "
        "(UTC+00:00) "
        "(the latest: pulse 118 beats/min)."
    )


# --- change from baseline -----------------------------------------------------------------------


def test_the_baseline_is_the_last_reading_in_the_window_before_the_dose() -> None:
    [finding] = [
        f
        for f in findings(
            MDMA,
            vitals(-50, SYSBP=100),
            vitals(-10, SYSBP=120),
            dose(0, 120),
            vitals(30, SYSBP=159),  # 59 above -50, 39 above -10
            vitals(60, SYSBP=160),
            now=61,
        )
        if f.rule_id == "sbp-rise-from-baseline"
    ]
    assert finding.at == at(60)
    assert finding.evidence == ("r-10", "r60")
    assert finding.message == (
        "Systolic BP 160 mmHg at 10:00 (UTC+00:00, T+60 min) is 40 mmHg above the pre-dose "
        "baseline of "
        "120 mmHg at 08:50 (UTC+00:00, T-10 min); the rule fires at 40 mmHg."
    )


@pytest.mark.parametrize(("minutes_before", "has_baseline"), [(60, True), (61, False), (0, True)])
def test_the_baseline_window_includes_both_ends(minutes_before: int, has_baseline: bool) -> None:
    p = with_rules(
        rule(
            "sbp-rise",
            "change_from_baseline",
            measure="SYSBP",
            direction="increase",
            by=40,
            unit="mmHg",
        )
    )
    out = lines(p, vitals(-minutes_before, SYSBP=120), dose(0, 120), vitals(30, SYSBP=170), now=31)
    assert out == (["T+30 sbp-rise warning"] if has_baseline else ["T+0 sbp-rise info no-baseline"])


def test_a_percentage_fall_from_baseline() -> None:
    p = with_rules(
        rule(
            "sbp-fall",
            "change_from_baseline",
            measure="SYSBP",
            direction="decrease",
            by=20,
            unit="%",
        )
    )
    out = findings(
        p,
        vitals(-5, SYSBP=130),
        dose(0, 120),
        vitals(30, SYSBP=105),  # -19.2%
        vitals(60, SYSBP=104),  # -20%
        now=61,
    )
    assert timeline(out) == ["T+60 sbp-fall warning"]
    assert out[0].observed["change_percent"] == -20.0
    assert "is 20% (26 mmHg) below the pre-dose baseline of 130 mmHg" in out[0].message


def test_no_dose_means_no_change_from_baseline_finding() -> None:
    assert findings(MDMA, vitals(-5, SYSBP=120), vitals(30, SYSBP=170), now=31)[0].rule_id != (
        "sbp-rise-from-baseline"
    )
    assert all(
        f.kind != "change_from_baseline"
        for f in findings(MDMA, vitals(-5, SYSBP=120), vitals(30, SYSBP=170), now=31)
    )


# --- rate of change -----------------------------------------------------------------------------


def test_a_rise_of_exactly_by_counts_despite_floating_point() -> None:
    p = with_rules(
        rule(
            "temp-up",
            "rate_of_change",
            measure="TEMP",
            direction="increase",
            by=1.0,
            unit="C",
            within_minutes=60,
        ),
        rule(
            "temp-up-small",
            "rate_of_change",
            measure="TEMP",
            direction="increase",
            by=0.2,
            unit="C",
            within_minutes=60,
        ),
    )
    assert 32.3 - 31.3 < 1.0 and 36.3 - 36.1 < 0.2  # what the tolerance is for
    out = lines(p, vitals(0, TEMP=31.3), vitals(30, TEMP=32.3), now=31)
    assert out == ["T+30 temp-up warning", "T+30 temp-up-small warning"]
    assert lines(p, vitals(0, TEMP=36.1), vitals(30, TEMP=36.3), now=31) == [
        "T+30 temp-up-small warning"
    ]


@pytest.mark.parametrize(("minutes", "fires"), [(60, True), (61, False)])
def test_the_rate_window_includes_its_end(minutes: int, fires: bool) -> None:
    out = lines(MDMA, vitals(0, TEMP=36.8), vitals(minutes, TEMP=37.8), now=minutes + 1)
    assert out == ([f"T+{minutes} temperature-rising warning"] if fires else [])


def test_a_fall_within_minutes_compares_with_the_highest_earlier_reading() -> None:
    p = with_rules(
        rule(
            "sbp-drop",
            "rate_of_change",
            measure="SYSBP",
            direction="decrease",
            by=30,
            unit="mmHg",
            within_minutes=15,
        )
    )
    [finding] = findings(
        p,
        vitals(0, SYSBP=140),
        vitals(5, SYSBP=150),
        vitals(10, SYSBP=145),
        vitals(15, SYSBP=118),
        now=16,
    )
    assert finding.evidence == ("r5", "r15")
    assert finding.observed["change"] == -32.0
    assert finding.message == (
        "Systolic BP 118 mmHg at 09:15 (UTC+00:00) is down 32 mmHg from 150 mmHg at 09:05 "
        "(UTC+00:00), 10 min "
        "earlier; the rule fires at 30 mmHg within 15 min."
    )


def _largest_moves(
    series: list[tuple[float, float]], direction: str, by: float, within: float
) -> list[tuple[int, int]]:
    """The definition, reading by reading: (start, reading) index pairs of every firing, the
    start being the earliest reading of the largest move among those at most ``within`` min
    before (a quadratic search, as the rule is specified)."""
    sign = 1 if direction == "increase" else -1
    fired = []
    for i, (minute, value) in enumerate(series):
        earlier = [j for j in range(i) if minute - series[j][0] <= within]
        if not earlier:
            continue
        start = max(earlier, key=lambda j: (sign * (value - series[j][1]), -j))
        if sign * (value - series[start][1]) >= by - 1e-9:
            fired.append((start, i))
    return fired


@settings(database=None, deadline=None, max_examples=150)
@given(
    # few values over a few hours: equal values (whose earliest must start the move) are common
    st.lists(st.tuples(st.integers(0, 240), st.integers(100, 112)), max_size=40),
    st.sampled_from(["increase", "decrease"]),
    st.integers(1, 10),
    st.integers(1, 90),
)
def test_rate_of_change_fires_on_the_largest_move_within_the_window(
    points: list[tuple[int, int]], direction: str, by: int, within: int
) -> None:
    p = with_rules(
        rule(
            "sbp-move",
            "rate_of_change",
            measure="SYSBP",
            direction=direction,
            by=by,
            unit="mmHg",
            within_minutes=within,
        )
    )
    minutes = sorted({minute for minute, _ in points})  # one reading per minute
    values = dict(points)
    series = [(float(m), float(values[m])) for m in minutes]
    steps = [vitals(m, SYSBP=values[m]) for m in minutes]
    found = findings(p, *steps, now=481) if steps else []
    expected = [
        (f"r{minutes[a]}", f"r{minutes[b]}")
        for a, b in _largest_moves(series, direction, by, within)
    ]
    assert [f.evidence for f in found] == expected


# --- overdue measurement ------------------------------------------------------------------------


def test_due_times_follow_the_schedule_and_meeting_intervals_take_the_longer_grace() -> None:
    dues = due_times(MDMA.vitals_schedule, ["SYSBP"])
    assert [d.minute for d in dues] == [0, 30, 60, 90, 120, 150, 180, 210, 240, 300, 360, 420, 480]
    assert DueTime(240, 15, "SYSBP") in dues
    assert DueTime(210, 10, "SYSBP") in dues
    assert [d.minute for d in due_times(MDMA.vitals_schedule, ["TEMP"])] == list(range(0, 481, 60))


OVERDUE_TEMP = with_rules(rule("temp-overdue", "overdue_measurement", measures=["TEMP"]))


@pytest.mark.parametrize(
    ("measured_at", "overdue"), [(-15, False), (-16, True), (15, False), (16, True)]
)
def test_a_due_time_is_met_within_grace_either_side(measured_at: int, overdue: bool) -> None:
    out = lines(OVERDUE_TEMP, dose(0, 120), vitals(measured_at, TEMP=36.8), now=20)
    assert out == (["T+15 temp-overdue warning"] if overdue else [])


def test_overdue_only_once_now_is_past_the_grace() -> None:
    s = session(OVERDUE_TEMP, dose(0, 120), now=15)
    assert s.timeline() == []
    s.now = 15.01
    assert s.timeline() == ["T+15 temp-overdue warning"]


def test_overdue_names_the_measures_missed_and_the_due_time() -> None:
    [finding] = findings(
        MDMA, baseline(-5), dose(0, 120), routine(0), vitals(28, SYSBP=120, DIABP=80), now=41
    )
    assert finding.rule_id == "overdue-bp-pulse"
    assert finding.at == at(40)
    assert (
        finding.message
        == "Pulse due at 09:30 (UTC+00:00, T+30 min) was not measured within 10 min of it."
    )
    assert finding.observed["missing"] == "PULSE"
    assert finding.dedup_key == "S1:overdue-bp-pulse"


def test_nothing_is_overdue_before_the_session_started() -> None:
    s = session(OVERDUE_TEMP, dose(0, 120), now=100, started=-30)
    assert s.timeline() == ["T+15 temp-overdue warning", "T+75 temp-overdue warning"]


# --- adverse events and C-SSRS ------------------------------------------------------------------

TERMS = with_rules(
    rule("aesi", "adverse_event", when={"special_interest_terms": ["self-harm", "Seizure"]}),
    rule("graded", "adverse_event", when={"min_ctcae_grade": 3}),
    rule("non-serious-severe", "adverse_event", when={"serious": False, "min_ctcae_grade": 3}),
)


@pytest.mark.parametrize(
    ("term", "fires"),
    [
        ("Self harm (superficial cuts)", True),
        ("SELF-HARM", True),
        ("self_harm", True),
        ("Seizures", True),  # substring: plural forms match
        ("seizure-like episode", True),
        ("Harm to self", False),
        ("Sezure", False),  # misspellings do not
    ],
)
def test_special_interest_terms_match_case_insensitively_inside_the_term(
    term: str, fires: bool
) -> None:
    out = lines(TERMS, ae(10, term), now=20)
    assert out == (["T+10 aesi warning"] if fires else [])


def test_the_coded_term_matches_too() -> None:
    from dataclasses import replace

    s = session(TERMS, ae(10, "funny turn"), now=20).snapshot()
    coded = replace(s, adverse_events=[replace(s.adverse_events[0], coded_term="Seizure")])
    assert timeline(evaluate(TERMS, coded)) == ["T+10 aesi warning"]


def test_every_criterion_given_must_hold_and_an_ungraded_event_has_no_grade() -> None:
    out = lines(
        TERMS,
        ae(10, "nausea", grade=None),
        ae(20, "vomiting", grade=3, serious=True),
        ae(30, "dehydration", grade=4),
        now=40,
    )
    assert out == ["T+20 graded warning", "T+30 graded warning", "T+30 non-serious-severe warning"]


REPORTED = with_rules(
    rule("sae", "adverse_event", when={"serious": True}, reporting_deadline_hours=24)
)


@pytest.mark.parametrize(
    ("reported", "now", "expected"),
    [
        (None, 100, ["T+0 sae warning"]),
        (None, 18 * 60, ["T+0 sae warning"]),  # exactly at the near mark: not past it yet
        (None, 18 * 60 + 1, ["T+0 sae warning", "T+1080 sae warning deadline-near"]),
        (17 * 60, 30 * 60, ["T+0 sae warning"]),
        (
            20 * 60,
            30 * 60,
            ["T+0 sae warning", "T+1080 sae warning deadline-near"],
        ),
        (
            25 * 60,
            30 * 60,
            [
                "T+0 sae warning",
                "T+1080 sae warning deadline-near",
                "T+1440 sae critical deadline-passed",
            ],
        ),
        (
            None,
            30 * 60,
            [
                "T+0 sae warning",
                "T+1080 sae warning deadline-near",
                "T+1440 sae critical deadline-passed",
            ],
        ),
    ],
)
def test_the_reporting_clock(reported: float | None, now: float, expected: list[str]) -> None:
    assert (
        lines(REPORTED, ae(0, "Hospitalised", serious=True, reported=reported), now=now) == expected
    )


def test_reporting_findings_share_a_key_apart_from_the_event() -> None:
    found = findings(REPORTED, ae(0, "Hospitalised", serious=True), now=30 * 60)
    assert [f.dedup_key for f in found] == [
        "S1:sae:ae1",
        "S1:sae:ae1:reporting",
        "S1:sae:ae1:reporting",
    ]
    assert found[0].observed["report_due_at"] == "2026-03-11T09:00:00+00:00"
    assert found[0].message == (
        "Adverse event 'Hospitalised', onset 2026-03-10 08:50 (UTC+00:00), site aware 2026-03-10 "
        "09:00 (UTC+00:00), is serious; report it to the sponsor by 2026-03-11 09:00 (UTC+00:00), "
        "within 24 h; not yet reported to the sponsor."
    )
    assert found[2].message == (
        "The sponsor report of adverse event 'Hospitalised' is due by 2026-03-11 09:00 "
        "(UTC+00:00), 24 h after the site learnt of it; the deadline passed without it."
    )


def test_reporting_findings_name_the_event_and_the_clock_in_their_key() -> None:
    found = findings(REPORTED, ae(0, "Hospitalised", serious=True), now=30 * 60)
    assert [f.key for f in found] == [
        DedupKey("S1", "sae", record_id="ae1"),
        DedupKey("S1", "sae", record_id="ae1", part="reporting"),
        DedupKey("S1", "sae", record_id="ae1", part="reporting"),
    ]


def test_a_report_after_now_is_not_known_yet() -> None:
    [finding] = findings(REPORTED, ae(0, "Hospitalised", serious=True, reported=120), now=60)
    assert finding.observed["sponsor_reported_at"] is None
    assert finding.message.endswith("not yet reported to the sponsor.")


def test_a_cssrs_finding_names_the_items_that_hit() -> None:
    [finding] = [
        f for f in findings(MDMA, cssrs(30, 1, 2, 6), now=40) if f.rule_id == "cssrs-high-risk"
    ]
    assert (
        finding.message
        == "C-SSRS screen at 09:30 (UTC+00:00) is positive on item 6 (suicidal behaviour)."
    )
    assert finding.dedup_key == "S1:cssrs-high-risk:c1"
    assert finding.observed["positive_items"] == "1, 2, 6"


# --- the engine ---------------------------------------------------------------------------------


def test_evaluate_rule_refuses_a_rule_of_another_protocol() -> None:
    foreign = with_rules(rule("sae", "adverse_event", when={"serious": True})).rule("sae")
    with pytest.raises(ValueError, match="not a rule of protocol"):
        evaluate_rule(MDMA, foreign, session(MDMA, now=0).snapshot())


def test_replay_needs_a_finished_session() -> None:
    with pytest.raises(ValueError, match="finished session"):
        replay(MDMA, session(MDMA, dose(0, 120), now=10).snapshot())


def test_replay_against_an_amended_protocol_shows_what_would_have_fired() -> None:
    amended = with_rules(
        rule("hypertension-150", "threshold", when={"any": [cond("SYSBP", ">=", 150)]}),
        version="1.4",
    )
    s = session(
        MDMA,
        baseline(-15),
        dose(0, 120),
        routine(0),
        vitals(30, SYSBP=155, DIABP=90, PULSE=90),
        now=40,
        ended=40,
    ).snapshot()
    assert replay(MDMA, s) == []
    [finding] = replay(amended, s)
    assert (finding.rule_id, finding.protocol_version, finding.at) == (
        "hypertension-150",
        "1.4",
        at(30),
    )
