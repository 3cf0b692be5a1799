"""An Idempotency-Key on the FHIR input routes (app/idempotency.py): the first answer replayed
as it was given, an OperationOutcome included; the key's own refusals in FHIR terms too."""

import uuid

from sqlalchemy import func, select

from app.models import IdempotencyKey, VitalReading
from tests.fhir_input.conftest import observation

URL = "/api/v1/fhir/Observation"
FHIR_JSON = "application/fhir+json"


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_an_observation_sent_again_under_its_key_gets_the_first_answer(device, db, dosing_session):
    sent = observation(dosing_session)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = device.post(URL, json=sent, headers=key)
    again = device.post(URL, json=sent, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)  # not the 200 of a replay by id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"].startswith(FHIR_JSON)
    assert count(db, VitalReading) == 1


def test_a_refused_observation_is_replayed_as_its_operation_outcome(device, db, dosing_session):
    sent = observation(dosing_session) | {"encounter": {"reference": f"Encounter/{uuid.uuid4()}"}}
    key = {"Idempotency-Key": "fhir-404"}
    first = device.post(URL, json=sent, headers=key)
    assert first.status_code == 404
    assert first.headers["content-type"].startswith(FHIR_JSON)
    again = device.post(URL, json=sent, headers=key)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (404, "true")
    assert again.content == first.content
    assert again.headers["content-type"].startswith(FHIR_JSON)
    assert count(db, IdempotencyKey) == 1


def test_the_keys_own_refusals_are_operation_outcomes(device, db, dosing_session):
    sent = observation(dosing_session)
    assert device.post(URL, json=sent, headers={"Idempotency-Key": "k"}).status_code == 201
    other = observation(dosing_session)
    reused = device.post(URL, json=other, headers={"Idempotency-Key": "k"})
    assert reused.status_code == 422
    assert reused.json()["resourceType"] == "OperationOutcome"
    assert "used for another request" in reused.text
    malformed = device.post(URL, json=other, headers={"Idempotency-Key": "no spaces"})
    assert malformed.status_code == 400
    assert malformed.json()["resourceType"] == "OperationOutcome"
    assert count(db, VitalReading) == 1


def test_a_refusal_that_says_when_to_retry_keeps_its_retry_after_as_an_outcome():
    from app.fhir_input.outcome import outcome_response, refusal_of
    from app.idempotency import IdempotencyKeyInFlight

    answer = outcome_response(refusal_of(IdempotencyKeyInFlight("the first request is running")))
    assert answer.status_code == 409
    assert answer.headers["retry-after"] == str(IdempotencyKeyInFlight.retry_after_seconds)
    assert answer.headers["content-type"].startswith("application/fhir+json")
