"""Adverse events and C-SSRS screens raise alerts in the transaction that records them, inside or
outside a dosing session, one alert per rule per record whichever path judges it; entering the
record in error withdraws them (tests/alerts/test_entered_in_error.py). Through HTTP, with the
clock pinned."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts.sweep import sweep
from app.models import AuditRecord, DosingSession, Participant
from tests.factories.alerts import PinnedClock, alerts_of
from tests.factories.dosing import T0, make_dosing_session

API = "/api/v1"
NOW = T0 + timedelta(hours=2)  # the session started at T0, dosed at T0+30 min


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    return PinnedClock(monkeypatch, NOW)


@pytest.fixture
def running(db: Session, participant: Participant) -> DosingSession:
    """In progress since T0, 80 mg given at T0+30 min."""
    return make_dosing_session(db, participant, initial_dose_mg=80)


def post_event(client, participant: Participant, **fields: Any) -> dict[str, Any]:
    body = {
        "verbatim_term": "Headache",
        "onset_at": (T0 + timedelta(minutes=90)).isoformat(),
        "site_aware_at": (T0 + timedelta(minutes=100)).isoformat(),
        "severity": "mild",
        "relatedness": "possible",
        "expectedness": "expected",
        "action_taken": "not_applicable",
        "outcome": "recovering",
    } | fields
    response = client.post(f"{API}/participants/{participant.id}/adverse-events", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def correct_event(client, event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = client.patch(
        f"{API}/adverse-events/{event['id']}", json={"reason": "source document checked", **fields}
    )
    assert response.status_code == 200, response.text
    return response.json()


def post_screen(client, participant: Participant, **answers: Any) -> dict[str, Any]:
    body = {
        "kind": "cssrs_screen",
        "administered_at": (T0 + timedelta(minutes=110)).isoformat(),
        "recall_period": "since_last_visit",
        "wish_to_be_dead": False,
        "suicidal_thoughts": False,
        "suicidal_behaviour": False,
    } | answers
    response = client.post(f"{API}/participants/{participant.id}/assessments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def alerts_about(client, participant: Participant, record_id: str) -> list[dict[str, Any]]:
    """The participant's alerts whose finding used the record."""
    return [
        alert
        for alert in alerts_of(client, participant_id=str(participant.id))
        if record_id in alert["finding"]["evidence"]
    ]


def by_rule(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rules = [alert["rule_id"] for alert in alerts]
    assert len(rules) == len(set(rules)), f"two alerts for one rule: {rules}"
    return {alert["rule_id"]: alert for alert in alerts}


# --- adverse events -----------------------------------------------------------------------------


def test_a_serious_ae_opens_a_critical_alert_naming_it(client, pinned, participant, running):
    event = post_event(
        client,
        participant,
        verbatim_term="Acute urinary retention",
        seriousness_criteria=["hospitalisation"],
        dosing_session_id=str(running.id),
    )

    alerts = by_rule(alerts_about(client, participant, event["id"]))
    assert list(alerts) == ["serious-adverse-event"]  # its reporting clock has not run down yet
    sae = alerts["serious-adverse-event"]
    assert (sae["severity"], sae["status"], sae["occurrences"]) == ("critical", "open", 1)
    assert "Acute urinary retention" in sae["message"]
    assert sae["dosing_session_id"] == str(running.id)
    # the MDMA protocol: a critical alert is acknowledged within 10 minutes of the finding,
    # which is when the site learnt of the event
    assert datetime.fromisoformat(sae["acknowledge_by"]) == T0 + timedelta(minutes=110)


def test_a_non_serious_ae_of_no_interest_opens_nothing(client, pinned, participant, running):
    post_event(client, participant, verbatim_term="Headache", ctcae_grade=1)
    assert alerts_of(client, participant_id=str(participant.id)) == []


def test_an_ae_of_special_interest_opens_a_warning(client, pinned, participant, running):
    event = post_event(client, participant, verbatim_term="Palpitations, intermittent")
    alerts = by_rule(alerts_about(client, participant, event["id"]))
    assert list(alerts) == ["ae-of-special-interest"]
    assert alerts["ae-of-special-interest"]["severity"] == "warning"
    assert "'palpitations'" in alerts["ae-of-special-interest"]["message"]


def test_corrections_making_an_ae_serious_then_severe_open_their_alerts_once(
    client, pinned, participant, running
):
    event = post_event(client, participant, verbatim_term="Nausea", ctcae_grade=2)
    assert alerts_about(client, participant, event["id"]) == []

    correct_event(client, event, seriousness_criteria=["hospitalisation"])
    alerts = by_rule(alerts_about(client, participant, event["id"]))
    assert list(alerts) == ["serious-adverse-event"]
    assert alerts["serious-adverse-event"]["severity"] == "critical"

    correct_event(client, event, ctcae_grade=3)
    alerts = by_rule(alerts_about(client, participant, event["id"]))
    assert set(alerts) == {"serious-adverse-event", "ae-grade-3-or-higher"}
    assert "CTCAE grade 3" in alerts["ae-grade-3-or-higher"]["message"]
    assert alerts["serious-adverse-event"]["occurrences"] == 1  # nothing new about seriousness


def test_an_ae_outside_any_session_alerts_under_the_participants_protocol(
    client, pinned, participant
):
    event = post_event(client, participant, verbatim_term="Syncope", ctcae_grade=3)
    alerts = by_rule(alerts_about(client, participant, event["id"]))
    assert set(alerts) == {"ae-of-special-interest", "ae-grade-3-or-higher"}
    for alert in alerts.values():
        assert alert["dosing_session_id"] is None
        assert alert["protocol_version_id"] == str(participant.protocol_version_id)


def test_an_ae_judged_by_its_own_path_and_its_sessions_gets_one_alert_per_rule(
    db, client, pinned, participant, running
):
    # dated within the running session, not linked to it: the session's snapshot holds it too
    event = post_event(
        client, participant, verbatim_term="Chest pain", seriousness_criteria=["hospitalisation"]
    )
    first = by_rule(alerts_about(client, participant, event["id"]))
    assert set(first) == {"serious-adverse-event", "ae-of-special-interest"}
    assert {alert["dosing_session_id"] for alert in first.values()} == {str(running.id)}

    # the session judged again: a batch of readings, and the sweep well past the SAE deadline
    readings = {
        "readings": [
            {
                "id": str(uuid.uuid4()),
                "measured_at": (T0 + timedelta(minutes=115)).isoformat(),
                "observations": [
                    {"code": "SYSBP", "value": 124, "unit": "mmHg"},
                    {"code": "DIABP", "value": 80, "unit": "mmHg"},
                    {"code": "PULSE", "value": 80, "unit": "beats/min"},
                ],
            }
        ]
    }
    batch = client.post(f"{API}/dosing-sessions/{running.id}/vital-readings/batch", json=readings)
    assert batch.status_code == 200, batch.text
    again = by_rule(alerts_about(client, participant, event["id"]))
    assert again == first  # not one field changed

    sweep(db, T0 + timedelta(hours=30))
    swept = alerts_about(client, participant, event["id"])
    keys = [alert["dedup_key"] for alert in swept]
    assert len(keys) == len(set(keys)) == 3  # the two rules and the SAE's reporting clock
    plain = [alert for alert in swept if not alert["dedup_key"].endswith(":reporting")]
    assert {alert["id"]: alert["occurrences"] for alert in plain} == {
        alert["id"]: 1 for alert in first.values()
    }


def test_an_ae_linked_to_a_session_after_its_alert_opened_keeps_that_one_alert(
    db, client, pinned, participant
):
    # recorded before any session exists: its alert belongs to no session
    event = post_event(client, participant, verbatim_term="Seizure")
    (alert,) = alerts_about(client, participant, event["id"])
    assert alert["dosing_session_id"] is None

    later = make_dosing_session(db, participant, started_at=T0 + timedelta(minutes=105))
    correct_event(client, event, dosing_session_id=str(later.id))
    assert alerts_about(client, participant, event["id"]) == [alert]
    sweep(db, NOW)  # the session in progress is judged with the event in its snapshot
    assert alerts_about(client, participant, event["id"]) == [alert]


def test_a_resolved_alert_of_an_ae_stays_resolved_when_the_ae_is_judged_again(
    client, pinned, participant
):
    event = post_event(client, participant, verbatim_term="Euphoric mood")
    (alert,) = alerts_about(client, participant, event["id"])
    resolved = client.post(
        f"{API}/alerts/{alert['id']}/resolve", json={"resolution": "assessed, no action needed"}
    )
    assert resolved.status_code == 200, resolved.text

    correct_event(client, event, outcome="recovered", end_at=NOW.isoformat())
    (again,) = alerts_about(client, participant, event["id"])
    assert (again["id"], again["status"]) == (alert["id"], "resolved")


def test_an_ae_entered_in_error_withdraws_its_alerts_and_stops_its_clock(
    db, client, pinned, participant, running
):
    event = post_event(
        client, participant, verbatim_term="Chest pain", seriousness_criteria=["hospitalisation"]
    )
    other = post_event(client, participant, verbatim_term="Palpitations")
    assert len(alerts_about(client, participant, event["id"])) == 2

    reason = "entered for the wrong participant"
    marked = client.post(
        f"{API}/adverse-events/{event['id']}/entered-in-error", json={"reason": reason}
    )
    assert marked.status_code == 200, marked.text
    taken_back = alerts_about(client, participant, event["id"])
    # the warning resolves itself; the critical nobody acknowledged stays open, saying why
    assert {(a["severity"], a["status"]) for a in taken_back} == {
        ("warning", "resolved"),
        ("critical", "open"),
    }
    for alert in taken_back:
        why = alert["resolution"] or alert["disproved"]
        assert why == f"its evidence was entered in error: {reason}"
        audit = db.scalars(
            select(AuditRecord)
            .where(AuditRecord.entity_type == "alerts", AuditRecord.entity_id == alert["id"])
            .order_by(AuditRecord.sequence)
        ).all()
        assert audit[-1].reason == why
    # the other event's alert is untouched
    assert [a["status"] for a in alerts_about(client, participant, other["id"])] == ["open"]

    # past the deadline nothing about the erroneous event opens again
    swept = sweep(db, T0 + timedelta(hours=30))
    assert all(event["id"] not in alert.finding["evidence"] for alert in swept)
    assert alerts_about(client, participant, event["id"]) == taken_back


# --- C-SSRS screens -----------------------------------------------------------------------------


def test_a_positive_cssrs_screen_opens_a_critical_alert(client, pinned, participant, running):
    screen = post_screen(
        client,
        participant,
        suicidal_behaviour=True,
        behaviour_within_3_months=True,
        dosing_session_id=str(running.id),
    )
    alerts = by_rule(alerts_about(client, participant, screen["id"]))
    assert list(alerts) == ["cssrs-high-risk"]
    alert = alerts["cssrs-high-risk"]
    assert (alert["severity"], alert["dosing_session_id"]) == ("critical", str(running.id))
    assert "item 6 (suicidal behaviour)" in alert["message"]


def test_a_negative_cssrs_screen_opens_nothing(client, pinned, participant, running):
    post_screen(client, participant, dosing_session_id=str(running.id))
    assert alerts_of(client, participant_id=str(participant.id)) == []


def test_a_screen_positive_on_item_1_only_opens_a_warning_not_the_high_risk_alert(
    client, pinned, participant, running
):
    screen = post_screen(
        client, participant, dosing_session_id=str(running.id), wish_to_be_dead=True
    )
    alerts = by_rule(alerts_about(client, participant, screen["id"]))
    assert list(alerts) == ["cssrs-ideation"]
    assert alerts["cssrs-ideation"]["severity"] == "warning"
    assert "T+80 min" in alerts["cssrs-ideation"]["message"]  # read in the session's time


def test_a_positive_screen_outside_a_session_alerts_and_in_error_withdraws(
    client, pinned, participant
):
    screen = post_screen(
        client,
        participant,
        suicidal_thoughts=True,
        ideation_with_methods=True,
        ideation_with_intent=True,
        ideation_with_plan_and_intent=False,
    )
    alerts = by_rule(alerts_about(client, participant, screen["id"]))
    assert set(alerts) == {"cssrs-high-risk", "cssrs-ideation"}  # item 4, and item 2 with it
    assert {alert["dosing_session_id"] for alert in alerts.values()} == {None}
    assert "item 4" in alerts["cssrs-high-risk"]["message"]
    assert alerts["cssrs-high-risk"]["severity"] == "critical"

    marked = client.post(
        f"{API}/assessments/{screen['id']}/entered-in-error",
        json={"reason": "answers of another participant"},
    )
    assert marked.status_code == 200, marked.text
    taken_back = by_rule(alerts_about(client, participant, screen["id"]))
    assert taken_back["cssrs-ideation"]["status"] == "resolved"
    assert taken_back["cssrs-high-risk"]["status"] == "open"  # critical, not yet acknowledged
    assert taken_back["cssrs-high-risk"]["disproved"] == (
        "its evidence was entered in error: answers of another participant"
    )
