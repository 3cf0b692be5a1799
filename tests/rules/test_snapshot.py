"""The snapshot refuses what the engine cannot trust, and is immutable and canonical."""

from dataclasses import FrozenInstanceError, replace
from datetime import datetime, timedelta

import pytest

from app.rules import AdverseEvent, CssrsScreen, Dose, OpenAlert, Reading, SessionSnapshot
from tests.rules.dsl import T0, at

NAIVE = datetime(2026, 3, 10, 9, 0)  # noqa: DTZ001 - the point of the test


def snapshot(**changes) -> SessionSnapshot:
    values = {"dosing_session_id": "S1", "visit_code": "EXP2", "now": at(60), "started_at": at(-30)}
    return SessionSnapshot(**{**values, **changes})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Reading("r1", NAIVE, {"SYSBP": 120}), "timezone"),
        (lambda: Reading("r1", T0, {"HEARTRATE": 80}), "unknown measure 'HEARTRATE'"),
        (lambda: Reading("r1", T0, {"SYSBP": 30}), "outside what can be measured"),
        (lambda: Reading("r1", T0, {"TEMP": float("nan")}), "outside what can be measured"),
        (lambda: Reading("r1", T0, {"PULSE": True}), "not a number"),
        (lambda: Reading("r1", T0, {"PULSE": "80"}), "not a number"),  # type: ignore[dict-item]
        (lambda: Reading("r1", T0, {}), "no values"),
        (lambda: Dose("d1", "booster", 60, T0), "not initial or supplemental"),  # type: ignore[arg-type]
        (lambda: Dose("d1", "initial", 0, T0), "not positive"),
        (lambda: Dose("d1", "initial", 120, NAIVE), "timezone"),
        (lambda: AdverseEvent("a1", "x", False, 6, T0, T0), "CTCAE grade 6"),
        (lambda: AdverseEvent("a1", "  ", False, 1, T0, T0), "empty verbatim term"),
        (lambda: AdverseEvent("a1", "x", False, 1, T0, T0, NAIVE), "timezone"),
        (lambda: CssrsScreen("c1", T0, frozenset({0, 7})), "not screener items"),
        (lambda: OpenAlert("x", "urgent"), "unknown severity"),  # type: ignore[arg-type]
        (lambda: snapshot(now=NAIVE), "timezone"),
        (lambda: snapshot(ended_at=at(-40)), "ended_at"),
        (lambda: snapshot(started_at=None, ended_at=at(10)), "ended_at"),
        (
            lambda: snapshot(readings=[Reading("r1", T0, {"SYSBP": 120})] * 2),
            "reading id 'r1' appears twice",
        ),
        (
            lambda: snapshot(
                doses=[Dose("d1", "initial", 120, T0), Dose("d2", "initial", 80, at(5))]
            ),
            "at most one initial dose",
        ),
        (
            lambda: snapshot(started_at=None, doses=[Dose("d1", "initial", 120, T0)]),
            "no started_at",
        ),
        (
            lambda: snapshot(doses=[Dose("d1", "initial", 120, at(-31))]),
            "before the session started",
        ),
    ],
)
def test_what_the_engine_cannot_trust_is_refused(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_snapshots_are_immutable() -> None:
    reading = Reading("r1", T0, {"SYSBP": 120})
    with pytest.raises(TypeError):
        reading.values["SYSBP"] = 200  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        reading.id = "r2"  # type: ignore[misc]
    s = snapshot(readings=[reading])
    assert isinstance(s.readings, tuple)
    with pytest.raises(FrozenInstanceError):
        s.now = at(90)  # type: ignore[misc]


def test_collections_are_sorted_into_one_canonical_order() -> None:
    late, early, tie = (
        Reading("b", at(30), {"PULSE": 80}),
        Reading("c", at(10), {"PULSE": 80}),
        Reading("a", at(30), {"SYSBP": 120, "PULSE": 80}),
    )
    s = snapshot(readings=[late, early, tie])
    assert [r.id for r in s.readings] == ["c", "a", "b"]
    assert s == snapshot(readings=[tie, late, early])
    assert list(tie.values) == ["SYSBP", "PULSE"]  # values in measure order, whatever was given


def test_integers_are_taken_as_floats() -> None:
    assert Reading("r1", T0, {"SYSBP": 120}).values["SYSBP"] == 120.0
    assert isinstance(Dose("d1", "initial", 120, T0).amount_mg, float)


def test_as_of_keeps_what_was_known_then() -> None:
    s = snapshot(
        now=at(2000),
        ended_at=at(480),
        readings=[Reading("r1", at(10), {"PULSE": 80}), Reading("r2", at(70), {"PULSE": 90})],
        doses=[Dose("d1", "initial", 120, T0), Dose("d2", "supplemental", 60, at(95))],
        adverse_events=[
            AdverseEvent("a1", "x", True, 3, at(20), at(30), sponsor_reported_at=at(200)),
            AdverseEvent("a2", "y", False, 1, at(40), at(90)),
        ],
        cssrs_screens=[CssrsScreen("c1", at(50), frozenset({1}))],
        open_alerts=[OpenAlert("news2", "warning")],
    )
    then = s.as_of(at(60))
    assert then.now == at(60)
    assert then.ended_at is None
    assert [r.id for r in then.readings] == ["r1"]
    assert [d.id for d in then.doses] == ["d1"]
    assert [(e.id, e.sponsor_reported_at) for e in then.adverse_events] == [("a1", None)]
    assert [c.id for c in then.cssrs_screens] == ["c1"]
    assert then.open_alerts == ()
    assert s.as_of(at(480)).ended_at == at(480)
    assert s.as_of(at(200)).adverse_events[0].sponsor_reported_at == at(200)
    assert s.as_of(at(-31)).started_at is None


def test_in_progress_between_start_and_end() -> None:
    s = snapshot(ended_at=at(480))
    assert not s.in_progress_at(at(-31))
    assert s.in_progress_at(at(-30))
    assert s.in_progress_at(at(479))
    assert not s.in_progress_at(at(480))
    assert replace(s, ended_at=None).in_progress_at(at(10_000))
    assert s.minutes_after_dose(at(10)) is None
    dosed = replace(s, doses=[Dose("d1", "initial", 120, T0 + timedelta(minutes=5))])
    assert dosed.minutes_after_dose(at(10)) == 5
