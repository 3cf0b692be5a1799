"""The study summary's numbers: enrolment by status, sessions, alerts by severity with the
median and 90th percentile of the time to acknowledge, serious adverse events and their
reporting clocks (on time, late, overdue, not yet due); only the caller's sites."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate
from app.alerts import service as alerts
from app.auth.principal import Principal
from app.exports.reports.summary import percentile, study_summary
from app.models import Alert
from app.permissions import Role
from tests.conftest import T0, make_person
from tests.factories.alerts import PinnedClock, make_alert


def _sae(db, participant, aware_hours: float, reported_hours: float | None):
    aware = T0 + timedelta(hours=aware_hours)
    return adverse_events.create(
        db,
        participant,
        AdverseEventCreate(
            verbatim_term="Hypertensive urgency, admitted overnight",
            onset_at=aware - timedelta(hours=1),
            severity="severe",
            seriousness_criteria=["hospitalisation"],
            relatedness="probable",
            expectedness="unexpected",
            action_taken="not_applicable",
            outcome="recovered",
            end_at=aware + timedelta(hours=2),
            site_aware_at=aware,
            sponsor_reported_at=None
            if reported_hours is None
            else aware + timedelta(hours=reported_hours),
        ),
    )


@pytest.fixture
def world(db, two_sites, monkeypatch):
    clock = PinnedClock(monkeypatch, T0 + timedelta(minutes=70))
    doctor = make_person(db, "doctor", Role.CLINICIAN, [two_sites.a.site, two_sites.b.site])
    alerts.acknowledge(db, two_sites.a.alert, doctor.id, None)  # raised at T0+60: 10 min
    clock.at(T0 + timedelta(minutes=90))
    alerts.acknowledge(db, two_sites.b.alert, doctor.id, None)  # 30 min
    make_alert(
        db,
        two_sites.a.dosing_session,
        found_at=T0 + timedelta(minutes=80),
        rule_id="low-spo2-news2-2",
        severity="warning",
    )
    clock.at(T0 + timedelta(hours=40))
    _sae(db, two_sites.a.participant, 1, 20)  # on time (due in 24 h)
    _sae(db, two_sites.a.participant, 2, 30)  # late
    _sae(db, two_sites.b.participant, 20, None)  # not reported, due at T0+44 h
    db.flush()
    return two_sites


def test_alerts_by_severity_with_the_time_to_acknowledge(db, world):
    summary = study_summary(db, world.study)
    by_severity = {line.severity: line for line in summary.alerts}
    critical, warning = by_severity["critical"], by_severity["warning"]
    stored = db.scalars(select(Alert.severity)).all()  # the SAEs raised alerts of their own
    assert critical.count == stored.count("critical") > 2
    assert critical.acknowledged == 2
    assert critical.median_minutes == pytest.approx(20)
    assert critical.p90_minutes == pytest.approx(28)  # 10 + 0.9 * (30 - 10)
    assert warning.count == stored.count("warning") >= 1
    assert (warning.acknowledged, warning.median_minutes) == (0, None)
    assert by_severity["info"].count == 0


def test_serious_events_and_their_reporting_clocks(db, world):
    summary = study_summary(db, world.study)
    assert [(s.subject_id, s.clock) for s in summary.saes] == [
        ("01-001", "on time"),
        ("01-001", "late"),
        ("02-001", "due"),  # aware at T0+20 h, due at T0+44 h; it is T0+40 h
    ]
    assert summary.saes[1].due_at == T0 + timedelta(hours=2 + 24)


def test_an_unreported_event_past_its_deadline_is_overdue(db, world, monkeypatch):
    PinnedClock(monkeypatch, T0 + timedelta(hours=45))
    assert study_summary(db, world.study).saes[2].clock == "overdue"


def test_enrolment_and_sessions(db, world):
    summary = study_summary(db, world.study)
    assert summary.enrolment["randomised"] == 2 and summary.enrolment["screening"] == 0
    assert summary.sessions == {"planned": 0, "in_progress": 2, "ended": 0}


def test_a_site_scoped_caller_sees_their_sites_and_their_alert_kinds(db, world):
    coordinator = Principal(
        user_id=world.a.therapist.id,
        username="coordinator",
        display_name="Coordinator",
        role=Role.COORDINATOR,
        site_ids=frozenset({world.a.site.id}),
        token_id=world.a.therapist.id,
    )
    summary = study_summary(db, world.study, coordinator)
    assert summary.sites == ["S01"]
    assert [s.subject_id for s in summary.saes] == ["01-001", "01-001"]
    assert sum(line.count for line in summary.alerts) == 0  # no clinical alert for a coordinator


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=40))
def test_percentiles_lie_between_the_values_in_order(values):
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    assert median is not None and p90 is not None
    assert min(values) <= median <= p90 <= max(values)
    assert percentile(values, 0.0) == min(values) and percentile(values, 1.0) == max(values)
