"""The supplemental dose gate: evaluate_dose_gate's decision, and the finding when ignored."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rules import GateCheck, GateDecision, OpenAlert, evaluate_dose_gate, evaluate_rule, wording
from app.rules.dose_limits import Refusal
from tests.rules.dsl import (
    Session,
    at,
    baseline,
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
GATE = MDMA.rule("supplemental-dose-gate")


def ready(now: float = 95, *extra, visit: str = "EXP2", initial_mg: float = 120) -> Session:
    """An EXP2 session at T+now with fresh routine readings (T+90 has temperature too)."""
    return session(
        MDMA,
        baseline(-15),
        dose(0, initial_mg),
        schedule(until=now),
        routine(90, TEMP=37.2),
        *extra,
        now=now,
        visit=visit,
    )


def decide(s: Session, **changes) -> GateDecision:
    return evaluate_dose_gate(s.protocol, replace(s.snapshot(), **changes))


def test_open_in_the_window_with_fresh_readings_within_limits() -> None:
    decision = decide(ready())
    assert decision.open
    assert decision.reasons == ()
    assert decision.opens_at == at(90)
    assert decision.closes_at == at(150)
    assert decision.supplemental_mg == 60
    assert decision.evaluated_at == at(95)
    assert decision.rule_ids == ("supplemental-dose-gate",)
    assert set(decision.evidence) == {"d-initial", "r90"}


def test_session_1_gives_half_of_80_mg() -> None:
    assert decide(ready(visit="EXP1", initial_mg=80)).supplemental_mg == 40


@pytest.mark.parametrize(
    ("now", "is_open"), [(89.9, False), (90, True), (150, True), (150.1, False)]
)
def test_window_ends_are_allowed(now: float, is_open: bool) -> None:
    s = session(
        MDMA,
        baseline(-15),
        dose(0, 120),
        routine(89, TEMP=37.0),
        routine(149, TEMP=37.0),
        now=now,
    )
    decision = decide(s)
    assert decision.open is is_open, decision.reasons
    if now < 90:
        assert decision.reasons == (
            "supplemental dose at 89 min 54 s after the initial dose is outside the protocol "
            "window 90-150 min (10:30 (UTC+00:00) to 11:30 (UTC+00:00))",
        )
    if now > 150:
        assert decision.reasons == (
            "supplemental dose at 150 min 6 s after the initial dose is outside the protocol "
            "window 90-150 min (10:30 (UTC+00:00) to 11:30 (UTC+00:00))",
        )
    if not is_open:
        assert [r.refusal for r in decision.why] == [Refusal.DOSE_OUTSIDE_WINDOW]


def test_closed_without_an_initial_dose() -> None:
    s = session(MDMA, baseline(-15), now=-5)
    decision = decide(s)
    assert not decision.open
    assert decision.reasons == ("a supplemental dose needs the initial dose recorded first",)
    assert decision.why[0].check is GateCheck.SESSION
    assert decision.opens_at is None and decision.supplemental_mg is None


def test_closed_when_the_protocol_has_no_supplemental_dose() -> None:
    s = session(PSILOCYBIN, baseline(-15), dose(0, 25), schedule(until=95), now=95)
    decision = decide(s)
    assert decision.reasons == ("the protocol allows no supplemental dose at DOSE",)
    assert decision.rule_ids == ()


def test_closed_for_a_visit_without_dosing() -> None:
    decision = decide(ready(), visit_code="PREP1")
    assert decision.reasons == (
        "visit PREP1 is not a dosing session of protocol mdma-ptsd-phase3 1.4",
    )


def test_closed_once_the_supplemental_dose_was_given() -> None:
    decision = decide(ready(95, supplemental(92, 60)))
    assert decision.reasons == (
        "a supplemental dose was already given at 10:32 (UTC+00:00); the protocol allows one",
        "the session total would be 240 mg, above the protocol maximum of 180 mg at EXP2",
    )
    assert [r.refusal for r in decision.why] == [Refusal.DOSE_ALREADY_GIVEN, Refusal.DOSE_MAX_TOTAL]


def test_closed_when_the_dose_would_pass_the_session_maximum() -> None:
    # 150 mg initial was a recorded deviation; half of it on top would make 225 mg
    decision = decide(ready(initial_mg=150))
    assert decision.reasons == (
        "the session total would be 225 mg, above the protocol maximum of 180 mg at EXP2",
    )


def test_closed_after_the_session_ended() -> None:
    s = ready()
    decision = decide(s, ended_at=at(93))
    assert decision.reasons == ("the session ended at 10:33 (UTC+00:00)",)


@pytest.mark.parametrize(
    ("severity", "is_open"), [("info", True), ("warning", True), ("critical", False)]
)
def test_an_open_alert_at_or_above_critical_closes_it(severity: str, is_open: bool) -> None:
    decision = decide(ready(), open_alerts=[OpenAlert("hypertensive-crisis", severity)])  # type: ignore[arg-type]
    assert decision.open is is_open
    if not is_open:
        assert decision.reasons == ("an open critical alert (hypertensive-crisis) blocks it",)


@pytest.mark.parametrize(("age", "is_open"), [(30, True), (31, False)])
def test_readings_must_be_at_most_30_minutes_old(age: int, is_open: bool) -> None:
    s = session(MDMA, baseline(-15), dose(0, 120), routine(60), now=60 + age)
    decision = decide(s)
    assert decision.open is is_open
    if not is_open:
        assert len(decision.reasons) == 4  # SYSBP, DIABP, PULSE and TEMP, all from T+60
        assert decision.reasons[0] == (
            "the latest systolic BP, at 10:00 (UTC+00:00), is 31 min old; the gate needs one at "
            "most 30 min old"
        )


def test_each_reason_says_whether_the_dose_limits_or_a_gate_rule_closed_it() -> None:
    """The dosing service tells the two apart by kind (a deviation reason answers the limits,
    only a clinician's override the rules), never by comparing sentences."""
    s = session(MDMA, baseline(-15), dose(0, 120), routine(60), now=200)
    decision = decide(s)
    limits = decision.reasons_of(GateCheck.DOSE_LIMITS)
    clinical = decision.reasons_of(GateCheck.CLINICAL)
    assert limits == [
        "supplemental dose at 200 min after the initial dose is outside the protocol window "
        "90-150 min (10:30 (UTC+00:00) to 11:30 (UTC+00:00))"
    ]
    assert len(clinical) == 4  # SYSBP, DIABP, PULSE and TEMP from T+60, all too old
    assert all(reason.startswith("the latest ") for reason in clinical)
    assert decision.reasons == (*limits, *clinical)


def test_a_measure_never_taken_closes_it() -> None:
    s = session(MDMA, dose(0, 120), vitals(90, SYSBP=120, DIABP=80, PULSE=80), now=95)
    assert decide(s).reasons == ("temperature has not been measured in this session",)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"SYSBP": 160}, "systolic BP 160 mmHg is at or above 160 mmHg at 10:30 (UTC+00:00)"),
        ({"DIABP": 100}, "diastolic BP 100 mmHg is at or above 100 mmHg at 10:30 (UTC+00:00)"),
        ({"PULSE": 110}, "pulse 110 beats/min is at or above 110 beats/min at 10:30 (UTC+00:00)"),
        ({"TEMP": 38.0}, "temperature 38.0 C is at or above 38.0 C at 10:30 (UTC+00:00)"),
    ],
)
def test_each_block_if_condition_closes_it(values: dict[str, Any], reason: str) -> None:
    assert decide(ready(95, vitals(90, **values))).reasons == (reason,)


def test_the_latest_value_of_each_measure_may_come_from_different_readings() -> None:
    s = session(
        MDMA,
        dose(0, 120),
        vitals(70, TEMP=38.2),
        vitals(88, SYSBP=130, DIABP=80, PULSE=90),
        now=95,
    )
    assert decide(s).reasons == ("temperature 38.2 C is at or above 38.0 C at 10:10 (UTC+00:00)",)
    cooler = session(
        MDMA,
        dose(0, 120),
        vitals(70, TEMP=38.2),
        vitals(80, TEMP=37.6),
        vitals(88, SYSBP=130, DIABP=80, PULSE=90),
        now=95,
    )
    assert decide(cooler).open


def test_every_reason_is_listed() -> None:
    s = session(MDMA, dose(0, 150), vitals(20, SYSBP=170, DIABP=80, PULSE=120), now=60)
    decision = decide(s, open_alerts=[OpenAlert("hypertensive-crisis", "critical")])
    assert decision.reasons == (
        "the session total would be 225 mg, above the protocol maximum of 180 mg at EXP3",
        "supplemental dose at 60 min after the initial dose is outside the protocol window "
        "90-150 min (10:30 (UTC+00:00) to 11:30 (UTC+00:00))",
        "an open critical alert (hypertensive-crisis) blocks it",
        "the latest systolic BP, at 09:20 (UTC+00:00), is 40 min old; the gate needs one at "
        "most 30 min old",
        "the latest diastolic BP, at 09:20 (UTC+00:00), is 40 min old; the gate needs one at "
        "most 30 min old",
        "the latest pulse, at 09:20 (UTC+00:00), is 40 min old; the gate needs one at most "
        "30 min old",
        "temperature has not been measured in this session",
        "systolic BP 170 mmHg is at or above 160 mmHg at 09:20 (UTC+00:00)",
        "pulse 120 beats/min is at or above 110 beats/min at 09:20 (UTC+00:00)",
    )


# --- the finding: a supplemental dose given while the gate was closed --------------------------


def test_a_supplemental_dose_given_through_an_open_gate_is_no_finding() -> None:
    s = ready(100, supplemental(95, 60))
    assert evaluate_rule(MDMA, GATE, s.snapshot()) == []


def test_a_supplemental_dose_given_too_early_is_a_finding() -> None:
    s = session(
        MDMA,
        baseline(-15),
        dose(0, 120),
        schedule(until=90),
        supplemental(75, 60),
        vitals(70, TEMP=37.0),
        now=90,
    )
    [finding] = evaluate_rule(MDMA, GATE, s.snapshot())
    assert finding.at == at(75)
    assert finding.variant == "given-while-closed"
    assert finding.severity == "warning"
    assert finding.dedup_key == "S1:supplemental-dose-gate:d-supplemental"
    assert finding.message == (
        "Supplemental dose 60 mg given at 10:15 (UTC+00:00, T+75 min) while the dose gate was "
        "closed: "
        "supplemental dose at 75 min after the initial dose is outside the protocol window "
        "90-150 min (10:30 (UTC+00:00) to 11:30 (UTC+00:00))."
    )
    assert finding.evidence[0] == "d-supplemental"


def test_the_gate_at_the_dose_is_judged_on_what_was_known_before_it() -> None:
    """A high pulse measured after the dose does not make the dose a finding."""
    s = ready(120, supplemental(95, 60), vitals(100, PULSE=125))
    assert evaluate_rule(MDMA, GATE, s.snapshot()) == []


def test_open_alerts_do_not_make_a_past_dose_a_finding() -> None:
    """Which alerts were open at the dose is the alerts service's history, not the snapshot's."""
    s = ready(100, supplemental(95, 60))
    snapshot = replace(s.snapshot(), open_alerts=[OpenAlert("hypertensive-crisis", "critical")])
    assert evaluate_rule(MDMA, GATE, snapshot) == []


# --- ages and times in the reasons are never rounded onto the limit ----------------------------


def _seconds(text: str) -> int:
    """'2 h 1 min 5 s' -> 7265."""
    units = {"h": 3600, "min": 60, "s": 1}
    words = text.split()
    return sum(int(n) * units[unit] for n, unit in zip(words[::2], words[1::2], strict=True))


@given(
    seconds=st.floats(0, 5 * 3600, allow_nan=False),
    bound_minutes=st.integers(1, 240),
    hours=st.booleans(),
)
def test_a_span_past_a_bound_never_reads_as_the_bound(
    seconds: float, bound_minutes: int, hours: bool
) -> None:
    bound = bound_minutes * 60
    shown = _seconds(wording.duration_beyond(seconds, bound, hours=hours))
    assert (shown > bound) is (seconds > bound)
    assert (shown < bound) is (seconds < bound)
    assert abs(shown - seconds) < 1


@given(age_seconds=st.integers(25 * 60, 40 * 60), micro=st.integers(0, 999_999))
def test_closed_for_age_exactly_when_the_age_shown_is_past_the_limit(
    age_seconds: int, micro: int
) -> None:
    measured = at(90)
    now = measured + timedelta(seconds=age_seconds, microseconds=micro)
    s = session(MDMA, dose(0, 120), routine(90, TEMP=37.0), now=95)
    decision = decide(s, now=now)
    stale = [r for r in decision.why if r.refusal is Refusal.GATE_STALE_VITALS]
    assert bool(stale) is (now - measured > timedelta(minutes=30))
    for reason in stale:
        shown = reason.text.split(" is ")[1].split(" old;")[0]
        assert _seconds(shown) > 30 * 60, reason.text
