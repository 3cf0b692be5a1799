"""What the chart page plots is what is stored: the valid readings at their minutes since the
initial dose, the protocol's limits, the doses and the alert's raise, acknowledgement and
resolution at their minutes. Read back from the figure's artists (no rendering)."""

import io
from datetime import timedelta

import pytest
from matplotlib.lines import Line2D
from PIL import Image
from sqlalchemy import select

from app.clinical.measures import MEASURES
from app.dosing import service as dosing
from app.exports.reports.chart import alert_rows, chart_figure
from app.exports.reports.limits import protocol_limits
from app.exports.reports.render import png_bytes
from app.exports.reports.session_data import PLOTTED, session_report
from app.models import Dose
from app.protocols import service as protocols
from tests.exports.reports.conftest import DOSED, ERROR_AT, READINGS
from tests.factories.alerts import PinnedClock, make_alert


def _lines(figure, gid: str) -> list[Line2D]:
    return [line for line in figure.findobj(Line2D) if line.get_gid() == gid]


def _xs(lines: list[Line2D]) -> set[float]:
    return {float(x) for line in lines for x in line.get_xdata()}


@pytest.fixture
def report(db, reported):
    return session_report(db, reported.session)


@pytest.mark.parametrize("code", PLOTTED)
def test_each_measure_plots_the_stored_valid_readings_at_their_minutes(db, reported, report, code):
    figure = chart_figure(report)
    (line,) = _lines(figure, f"vitals:{code}")
    column = MEASURES[code].column
    expected = [
        ((r.measured_at - DOSED).total_seconds() / 60, getattr(r, column))
        for r in reported.stored
        if getattr(r, column) is not None
    ]
    assert list(line.get_xdata()) == pytest.approx([minute for minute, _ in expected])
    assert list(line.get_ydata()) == pytest.approx([value for _, value in expected])
    assert ERROR_AT not in list(line.get_xdata())  # the reading entered in error is left out
    # the fixture's readings are all there (and the conftest world's seed reading, minute 30)
    assert {minute for minute, *_ in READINGS} - {ERROR_AT} <= set(line.get_xdata())


def test_the_report_counts_the_reading_entered_in_error(report):
    assert report.readings_entered_in_error == 1
    # the fixture's readings but one, and the world's seed reading
    assert report.readings == len(READINGS) - 1 + 1


def test_doses_are_vertical_lines_at_their_minutes_on_every_panel(report):
    figure = chart_figure(report)
    initial, supplemental = _lines(figure, "dose:initial"), _lines(figure, "dose:supplemental")
    assert _xs(initial) == {0.0} and _xs(supplemental) == {120.0}
    assert len(initial) == len(supplemental) == 5  # four vitals panels and the alert strip


def test_the_alert_is_marked_raised_acknowledged_and_resolved_at_its_minutes(report):
    figure = chart_figure(report)
    rule = "hypertensive-crisis"
    assert _xs(_lines(figure, f"alert:{rule}:raised")) == {30.0}
    assert _xs(_lines(figure, f"alert:{rule}:acknowledged")) == {45.0}
    assert _xs(_lines(figure, f"alert:{rule}:resolved")) == {70.0}


def test_the_limits_drawn_are_the_protocols_alert_thresholds(db, reported, report):
    figure = chart_figure(report)
    protocol = protocols.definition_of(db, reported.session.protocol_version_id)
    limits = protocol_limits(protocol)
    drawn = {
        line.get_gid(): float(line.get_ydata()[0])
        for line in figure.findobj(Line2D)
        if str(line.get_gid()).startswith("limit:")
    }
    expected = {
        f"limit:{code}:{limit.rule_id}": limit.value
        for code in PLOTTED
        for limit in limits.get(code, [])
    }
    assert drawn == expected
    # the MDMA protocol's CTCAE grade 3 and crisis lines are among them
    assert drawn["limit:SYSBP:hypertension-grade-3"] == 160
    assert drawn["limit:SYSBP:hypertensive-crisis"] == 180
    assert drawn["limit:OXYSAT:hypoxia-news2-3"] == 91


def test_a_limit_two_rules_share_is_drawn_once_for_the_most_severe(db, reported):
    protocol = protocols.definition_of(db, reported.session.protocol_version_id)
    pulse = protocol_limits(protocol)["PULSE"]
    assert [(limit.op, limit.value, limit.severity) for limit in pulse] == [
        (">=", 131, "critical"),
        (">", 110, "warning"),
    ]


def test_without_an_initial_dose_minute_zero_is_the_session_start(db, reported):
    for dose in db.scalars(select(Dose).where(Dose.dosing_session_id == reported.session.id)):
        dose.record_status = "entered_in_error"
        dose.error_reason = "test"
    db.flush()
    report = session_report(db, reported.session)
    assert report.origin == reported.session.started_at
    assert report.origin_label == "session start"
    assert report.series["SYSBP"].minutes[0] == pytest.approx(
        (DOSED + timedelta(minutes=-20) - reported.session.started_at).total_seconds() / 60
    )


def test_a_planned_session_without_readings_or_doses_still_draws(db, two_sites):

    planned = dosing.create_session(db, two_sites.a.participant, two_sites.a.visits["EXP2"])
    report = session_report(db, planned)
    figure = chart_figure(report)
    assert report.origin_label == "session start" and report.doses == []
    assert all(len(line.get_xdata()) == 0 for line in _lines(figure, "vitals:SYSBP"))
    assert not _lines(figure, "dose:initial")
    assert Image.open(io.BytesIO(png_bytes(figure))).size == (1169, 827)


def test_a_rule_that_alerts_again_after_a_resolution_stays_on_its_row(db, reported, monkeypatch):
    PinnedClock(monkeypatch, DOSED + timedelta(minutes=200))
    again, created = make_alert(
        db, reported.session, found_at=DOSED + timedelta(minutes=150), systolic=185
    )
    assert created and again.id != reported.site.alert.id
    report = session_report(db, reported.session)
    figure = chart_figure(report)
    raised = _lines(figure, "alert:hypertensive-crisis:raised")
    assert _xs(raised) == {30.0, 150.0}
    rows = alert_rows(report)
    assert len(rows) == len({a.rule_id for a in report.alerts}) < len(report.alerts)
    on_rows = {float(y) for line in raised for y in line.get_ydata()}
    assert on_rows == {float(rows.index("hypertensive-crisis"))}


def test_the_top_axis_is_the_sites_clock_time(db, reported):
    reported.site.site.timezone = "America/Denver"
    db.flush()
    figure = chart_figure(session_report(db, reported.session))
    (clock,) = figure.axes[0].child_axes
    local = clock.xaxis.get_major_formatter()
    # minute 0 is the initial dose, 08:30 UTC: 01:30 in Denver in February (MST, UTC-7)
    assert local(0, 0) == "01:30" and local(90, 0) == "03:00"
    assert "America/Denver" in clock.get_xlabel()
