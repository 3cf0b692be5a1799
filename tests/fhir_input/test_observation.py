"""POST /api/v1/fhir/Observation: a vital-signs Observation stored once as a reading, with its
unit converted and its alerts raised, answered as a FHIR server answers; each kind of malformed
or unwanted resource refused with an OperationOutcome that says why and where."""

import uuid

import pytest
from sqlalchemy import func, select

from app.models import Alert, AuditRecord, VitalReading
from tests.fhir_input.conftest import blood_pressure, observation, quantity

URL = "/api/v1/fhir/Observation"
FHIR_JSON = "application/fhir+json"


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def issues(response) -> list[dict]:
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"]


def test_a_heart_rate_is_stored_and_answered_as_fhir_with_location(device, db, dosing_session):
    reading_id = uuid.uuid4()
    sent = observation(dosing_session, reading_id=reading_id)
    response = device.post(URL, json=sent, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.headers["location"] == f"/api/v1/fhir/Observation/{reading_id}-pulse"
    body = response.json()
    assert body["resourceType"] == "Observation" and body["id"] == f"{reading_id}-pulse"
    assert body["valueQuantity"]["value"] == 104 and body["valueQuantity"]["code"] == "/min"
    stored = db.get(VitalReading, reading_id)
    assert stored.pulse_bpm == 104 and stored.dosing_session_id == dosing_session.id
    audited = db.scalars(select(AuditRecord).where(AuditRecord.entity_id == str(reading_id))).all()
    assert len(audited) == 1 and audited[0].action == "create"


def test_a_retry_is_stored_once_and_other_values_under_the_same_id_conflict(
    device, db, dosing_session
):
    sent = observation(dosing_session)
    first = device.post(URL, json=sent)
    again = device.post(URL, json=sent)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert count(db, VitalReading) == 1
    other = device.post(URL, json=sent | {"valueQuantity": quantity(120, "/min")})
    assert other.status_code == 409
    [issue] = issues(other)
    assert issue["code"] == "conflict" and "never reused" in issue["diagnostics"]
    assert count(db, VitalReading) == 1


def test_fahrenheit_is_converted_to_celsius(device, db, dosing_session):
    sent = observation(dosing_session, "8310-5", quantity(100.4, "[degF]"))
    response = device.post(URL, json=sent)
    assert response.status_code == 201, response.text
    assert response.json()["valueQuantity"] == {
        "value": 38.0,
        "unit": "Cel",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    assert db.get(VitalReading, uuid.UUID(sent["identifier"][0]["value"])).temp_c == 38.0


def test_the_blood_pressure_panel_stores_both_pressures_and_alerts_when_dangerous(
    device, db, dosing_session
):
    response = device.post(URL, json=blood_pressure(dosing_session, 182, 112))
    assert response.status_code == 201, response.text
    reading = db.scalars(select(VitalReading)).one()
    assert (reading.sysbp_mmhg, reading.diabp_mmhg) == (182, 112)
    assert response.json()["code"]["coding"][0]["code"] == "85354-9"
    alerts = db.scalars(select(Alert).where(Alert.dosing_session_id == dosing_session.id)).all()
    assert any(alert.severity == "critical" for alert in alerts), [a.rule_id for a in alerts]


def test_a_component_without_a_value_is_left_out_of_the_panel(device, db, dosing_session):
    response = device.post(URL, json=blood_pressure(dosing_session, 128, None))
    assert response.status_code == 201, response.text
    reading = db.scalars(select(VitalReading)).one()
    assert (reading.sysbp_mmhg, reading.diabp_mmhg) == (128, None)


def test_a_stored_observation_is_read_back_at_its_location(client, device, dosing_session):
    created = device.post(URL, json=observation(dosing_session))
    read = client.get(created.headers["location"])
    assert read.status_code == 200 and read.json() == created.json()
    assert client.get(f"{URL}/{uuid.uuid4()}-pulse").status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "code", "where", "says"),
    [
        (
            {"resourceType": "Patient"},
            400,
            "not-supported",
            "Observation.resourceType",
            "not Patient",
        ),
        (
            {"valueQuantity": {"value": "fast"}},
            400,
            "structure",
            "Observation.valueQuantity.value",
            "",
        ),
        ({"colour": "red"}, 400, "structure", "Observation.colour", "Extra inputs"),
        ({"status": "entered-in-error"}, 422, "value", "Observation.status", "entered-in-error"),
        ({"category": []}, 422, "not-supported", "Observation.category", "vital-signs"),
        ({"identifier": []}, 422, "required", "Observation.identifier", "retry"),
        ({"encounter": None}, 422, "required", "Observation.encounter", "dosing session"),
        (
            {"effectiveDateTime": "2026-02-02"},
            422,
            "value",
            "Observation.effectiveDateTime",
            "time of day",
        ),
        (
            {"code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]}},
            422,
            "not-supported",
            "Observation.code",
            "not a vital sign",
        ),
        (
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}},
            422,
            "not-supported",
            "Observation.code",
            "85354-9 panel",
        ),
        ({"valueQuantity": quantity(104, "kg")}, 422, "value", "Observation.valueQuantity", "'kg'"),
        (
            {"valueQuantity": quantity(400, "/min")},
            422,
            "value",
            "Observation.valueQuantity",
            "physiologically possible",
        ),
    ],
    ids=[
        "another-resource",
        "malformed-value",
        "unknown-element",
        "status",
        "not-vital-signs",
        "no-identifier",
        "no-session",
        "date-only",
        "not-a-vital-sign",
        "bp-alone",
        "unit",
        "impossible",
    ],
)
def test_each_kind_of_malformed_observation_is_refused_saying_why(
    device, db, dosing_session, change, status, code, where, says
):
    sent = {k: v for k, v in (observation(dosing_session) | change).items() if v is not None}
    response = device.post(URL, json=sent)
    assert response.status_code == status, response.text
    found = issues(response)
    assert any(
        i["code"] == code and i.get("expression") == [where] and says in i["diagnostics"]
        for i in found
    ), found
    assert count(db, VitalReading) == 0


def test_another_sites_session_is_not_found(device, db, dosing_session):
    sent = observation(dosing_session) | {"encounter": {"reference": f"Encounter/{uuid.uuid4()}"}}
    response = device.post(URL, json=sent)
    assert response.status_code == 404
    assert issues(response)[0]["code"] == "not-found"


def test_the_caller_is_refused_in_fhir_terms(anonymous_client, client_as, dosing_session):
    unsigned = anonymous_client.post(URL, json=observation(dosing_session))
    assert unsigned.status_code == 401 and issues(unsigned)[0]["code"] == "login"
    assert unsigned.headers["www-authenticate"].startswith("Bearer")
    sponsor = client_as("sponsor").post(URL, json=observation(dosing_session))
    assert sponsor.status_code == 403 and issues(sponsor)[0]["code"] == "forbidden"


def test_a_body_that_is_not_an_object_is_refused(device):
    response = device.post(URL, content=b"[1, 2]", headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 400
    assert issues(response)[0]["code"] == "structure"
