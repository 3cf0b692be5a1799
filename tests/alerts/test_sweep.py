"""The time-driven sweep: overdue measurements of sessions in progress and SAE reporting clocks
open their alerts with no new data, on time, once; ended sessions are left alone."""

from datetime import timedelta
from typing import Any

import pytest

from app.alerts import sweep as sweeping
from app.alerts.sweep import in_progress, plan, reporting_clocks
from app.models import DosingSession, Participant
from app.protocols import service as protocols
from app.rules import evaluate
from app.sessions.snapshot import snapshot_of
from tests.factories.alerts import PinnedClock, alerts_of
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant

API = "/api/v1"
NOW = T0 + timedelta(hours=2)
AWARE = T0 + timedelta(minutes=100)  # when the site learnt of the SAE: its clock starts
NEAR = AWARE + timedelta(hours=18)  # 24 h deadline, warned a quarter of it (6 h) before
DUE = AWARE + timedelta(hours=24)
MINUTE = timedelta(minutes=1)


def sweep(db, now):
    """The sweep's alerts about sessions and adverse events: the participants here were enrolled
    in January, so their first visits' windows have closed too (tests/alerts/test_visit_missed.py
    covers those)."""
    return [alert for alert in sweeping.sweep(db, now) if alert.kind != "visit_missed"]


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    return PinnedClock(monkeypatch, NOW)


def post_sae(client, participant: Participant, **fields: Any) -> dict[str, Any]:
    body = {
        "verbatim_term": "Hyponatremia",
        "onset_at": (T0 + timedelta(minutes=90)).isoformat(),
        "site_aware_at": AWARE.isoformat(),
        "severity": "severe",
        "seriousness_criteria": ["hospitalisation"],
        "relatedness": "probable",
        "expectedness": "unexpected",
        "action_taken": "not_applicable",
        "outcome": "recovering",
    } | fields
    response = client.post(f"{API}/participants/{participant.id}/adverse-events", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def report_to_sponsor(client, event: dict[str, Any], reported_at) -> None:
    response = client.patch(
        f"{API}/adverse-events/{event['id']}",
        json={"sponsor_reported_at": reported_at.isoformat(), "reason": "SAE form sent"},
    )
    assert response.status_code == 200, response.text


def reporting_alerts(client, participant: Participant) -> list[dict[str, Any]]:
    return [
        alert
        for alert in alerts_of(client, participant_id=str(participant.id))
        if alert["dedup_key"].endswith(":reporting")
    ]


# --- SAE reporting clocks -----------------------------------------------------------------------


def test_the_sae_clock_warns_when_near_then_turns_the_same_alert_critical_when_passed(
    db, client, pinned, participant
):
    event = post_sae(client, participant)  # no dosing session: only the clock sweep sees it
    assert reporting_alerts(client, participant) == []

    assert sweep(db, NEAR - MINUTE) == []
    assert sweep(db, NEAR) == []  # strictly past the moment, as the engine says
    assert reporting_alerts(client, participant) == []

    (near,) = sweep(db, NEAR + MINUTE)
    (warning,) = reporting_alerts(client, participant)
    assert warning["id"] == str(near.id)
    assert (warning["rule_id"], warning["severity"]) == ("serious-adverse-event", "warning")
    assert warning["dosing_session_id"] is None
    assert "Hyponatremia" in warning["message"] and "less than 6 h" in warning["message"]
    assert sweep(db, NEAR + MINUTE) == []  # the same moment again: nothing new
    assert reporting_alerts(client, participant) == [warning]

    assert sweep(db, DUE - MINUTE) == []
    (passed,) = sweep(db, DUE + MINUTE)
    (critical,) = reporting_alerts(client, participant)
    assert critical["id"] == warning["id"] == str(passed.id)
    assert (critical["severity"], critical["occurrences"]) == ("critical", 2)
    assert "deadline passed" in critical["message"]
    assert critical["finding"]["variant"] == "deadline-passed"
    assert event["id"] in critical["finding"]["evidence"]
    assert sweep(db, DUE + MINUTE) == []


def test_a_sponsor_report_before_the_warning_keeps_the_clock_quiet(db, client, pinned, participant):
    event = post_sae(client, participant)
    report_to_sponsor(client, event, AWARE + timedelta(minutes=15))
    assert reporting_clocks(db) == []  # the clock stopped: not a candidate any more
    assert sweep(db, DUE + timedelta(hours=6)) == []
    alerts = [
        a
        for a in alerts_of(client, participant_id=str(participant.id))
        if a["kind"] != "visit_missed"
    ]
    assert [(a["rule_id"], a["severity"]) for a in alerts] == [
        ("serious-adverse-event", "critical")
    ]
    assert not alerts[0]["dedup_key"].endswith(":reporting")


def test_a_sponsor_report_after_the_warning_stops_the_escalation(db, client, pinned, participant):
    event = post_sae(client, participant)
    sweep(db, NEAR + MINUTE)
    pinned.at(NEAR + timedelta(hours=1))
    report_to_sponsor(client, event, NEAR + timedelta(hours=1))
    assert sweep(db, DUE + timedelta(hours=1)) == []
    (warning,) = reporting_alerts(client, participant)
    assert (warning["severity"], warning["occurrences"]) == ("warning", 1)


def test_only_valid_unreported_events_matching_a_deadline_rule_are_candidates(
    db, client, pinned, participant
):
    running = post_sae(client, participant)
    post_sae(client, participant, verbatim_term="Syncope", seriousness_criteria=[])  # not serious
    reported = post_sae(client, participant, verbatim_term="Pneumonia")
    report_to_sponsor(client, reported, NOW)
    in_error = post_sae(client, participant, verbatim_term="Fracture")
    marked = client.post(
        f"{API}/adverse-events/{in_error['id']}/entered-in-error", json={"reason": "duplicate"}
    )
    assert marked.status_code == 200, marked.text
    assert [str(event.id) for event in reporting_clocks(db)] == [running["id"]]


# --- sessions in progress -----------------------------------------------------------------------


def by_rule(client, dosing_session: DosingSession) -> dict[str, dict[str, Any]]:
    alerts = alerts_of(client, dosing_session_id=str(dosing_session.id))
    return {alert["rule_id"]: alert for alert in alerts}


def test_the_sweep_opens_overdue_alerts_with_no_new_readings_once(db, client, pinned, participant):
    running = make_dosing_session(db, participant, initial_dose_mg=80)  # dosed at T0+30 min
    assert by_rule(client, running) == {}  # nothing was posted: nothing judged it yet

    opened = sweep(db, NOW)
    alerts = by_rule(client, running)
    assert set(alerts) == {"overdue-bp-pulse", "overdue-temperature"}
    assert {str(alert.id) for alert in opened} == {alert["id"] for alert in alerts.values()}
    assert all(alert["severity"] == "warning" for alert in alerts.values())
    assert "were not measured within 10 min" in alerts["overdue-bp-pulse"]["message"]

    assert sweep(db, NOW) == []
    assert by_rule(client, running) == alerts  # not one field changed

    # an hour on, more due times have passed unmet: the same alert counts them
    more = sweep(db, NOW + timedelta(hours=1))
    assert {str(alert.id) for alert in more} == {alert["id"] for alert in alerts.values()}
    later = by_rule(client, running)
    assert later["overdue-bp-pulse"]["occurrences"] > alerts["overdue-bp-pulse"]["occurrences"]


def test_the_sweep_leaves_ended_and_planned_sessions_alone(db, client, pinned, site, participant):
    ended = make_dosing_session(db, participant, initial_dose_mg=80)
    ended.status, ended.ended_at = "ended", T0 + timedelta(hours=4)
    db.flush()
    planned = make_dosing_session(
        db, make_participant(db, site, "01-002", stage="randomised"), started_at=None
    )
    later = T0 + timedelta(hours=5)
    # judged, the ended session would show the measurements it missed while it ran
    snapshot = snapshot_of(db, ended, later)
    missed = evaluate(protocols.definition_of(db, ended.protocol_version_id), snapshot)
    assert any(finding.kind == "overdue_measurement" for finding in missed)

    assert in_progress(db, later) == []
    assert sweep(db, later) == []
    assert by_rule(client, ended) == {} and by_rule(client, planned) == {}


# --- sweeping from the last sweep on ------------------------------------------------------------


def test_a_session_is_swept_whole_first_then_only_once_a_due_time_has_passed_its_grace(
    db, participant
):
    """Dosed at T0+30: blood pressure and pulse are due every 30 min with 10 min of grace, so
    after a sweep at dose+41 min the next moment one can become overdue is dose+70 min."""
    running = make_dosing_session(db, participant, initial_dose_mg=80)
    dosed = T0 + timedelta(minutes=30)
    first = plan(db, dosed + timedelta(minutes=41), {})
    assert (first.running, first.to_sweep) == ([running.id], {running.id: None})

    swept = {running.id: dosed + timedelta(minutes=41)}
    assert plan(db, dosed + timedelta(minutes=69), swept).to_sweep == {}
    assert plan(db, dosed + timedelta(minutes=70), swept).to_sweep == {}  # not yet past it
    later = plan(db, dosed + timedelta(minutes=71), swept)
    assert later.running == [running.id]
    assert later.to_sweep == {running.id: dosed + timedelta(minutes=41)}


def test_a_session_with_no_initial_dose_has_nothing_to_sweep_after_its_first_sweep(db, participant):
    undosed = make_dosing_session(db, participant)
    assert plan(db, NOW, {}).to_sweep == {undosed.id: None}
    assert plan(db, NOW + timedelta(hours=3), {undosed.id: NOW}).to_sweep == {}
