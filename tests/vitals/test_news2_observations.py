"""The two NEWS2 observations that are not measures (supplemental oxygen, new confusion): kept
with the reading, shown back, counted by the NEWS2 rule, and part of a reading's identity."""

from app.models import Alert
from tests.vitals.readings import observation, reading

# NEWS2 of these values on room air and alert: resp 21 (2) + SpO2 95 (1) + pulse 92 (1) = 4,
# one short of the protocol's "urgent response" level of 5.
FOUR = [
    observation("RESP", 21, "breaths/min"),
    observation("OXYSAT", 95, "%"),
    observation("SYSBP", 124, "mmHg"),
    observation("DIABP", 80, "mmHg"),
    observation("PULSE", 92, "beats/min"),
    observation("TEMP", 37.0, "C"),
]


def _url(dosing_session):
    return f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings"


def _news2_alerts(db, dosing_session):
    return [
        alert
        for alert in db.query(Alert).filter(Alert.dosing_session_id == dosing_session.id)
        if alert.rule_id == "news2"
    ]


def test_on_room_air_and_alert_the_score_stays_below_urgent(client, db, dosing_session):
    response = client.post(_url(dosing_session), json=reading(90, *FOUR))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["supplemental_oxygen"], body["new_confusion"]) == (None, None)
    assert _news2_alerts(db, dosing_session) == []


def test_supplemental_oxygen_scores_two_and_reaches_the_urgent_level(client, db, dosing_session):
    sent = reading(90, *FOUR, supplemental_oxygen=True, new_confusion=False)
    response = client.post(_url(dosing_session), json=sent)
    assert response.status_code == 201, response.text
    shown = client.get(f"/api/v1/vital-readings/{sent['id']}").json()
    assert (shown["supplemental_oxygen"], shown["new_confusion"]) == (True, False)
    (alert,) = _news2_alerts(db, dosing_session)
    assert alert.severity == "critical"  # 5-6 is the urgent-response level
    assert "NEWS2 6" in alert.message
    assert "supplemental oxygen: 2" in alert.message


def test_new_confusion_scores_three_on_its_own(client, db, dosing_session):
    sent = reading(90, *FOUR, new_confusion=True)
    assert client.post(_url(dosing_session), json=sent).status_code == 201
    (alert,) = _news2_alerts(db, dosing_session)
    assert "NEWS2 7" in alert.message
    assert alert.severity == "critical"  # 7 is the emergency level
    assert "new confusion: 3" in alert.message


def test_the_same_id_with_another_oxygen_answer_is_a_different_reading(client, dosing_session):
    first = reading(90, *FOUR, supplemental_oxygen=False)
    assert client.post(_url(dosing_session), json=first).status_code == 201
    retried = client.post(_url(dosing_session), json=first)
    assert retried.status_code == 200  # the same reading again: a duplicate
    changed = client.post(_url(dosing_session), json={**first, "supplemental_oxygen": True})
    assert changed.status_code == 409
    assert "supplemental_oxygen" in changed.json()["detail"]


def test_an_answer_must_be_true_or_false(client, dosing_session):
    response = client.post(
        _url(dosing_session), json=reading(90, *FOUR, supplemental_oxygen="maybe")
    )
    assert response.status_code == 422
    assert "supplemental_oxygen" in response.text
