"""POST /api/v1/fhir with a Bundle of vital-signs Observations: a batch answers each entry on
its own (a refused one costs the others nothing); a transaction stores every entry or none."""

import uuid

from sqlalchemy import func, select

from app.models import AuditRecord, VitalReading
from tests.fhir_input.conftest import blood_pressure, bundle, observation, quantity

URL = "/api/v1/fhir"


def readings(db) -> int:
    return db.scalar(select(func.count()).select_from(VitalReading))


def test_a_batch_stores_the_good_entries_and_says_why_each_bad_one_was_refused(
    device, db, dosing_session
):
    good = observation(dosing_session, minutes=60)
    impossible = observation(dosing_session, minutes=61, valueQuantity=quantity(400, "/min"))
    elsewhere = observation(dosing_session, minutes=62) | {
        "encounter": {"reference": f"Encounter/{uuid.uuid4()}"}
    }
    pressure = blood_pressure(dosing_session, 150, 95, effectiveDateTime="2026-02-02T09:03:00Z")
    response = device.post(URL, json=bundle("batch", good, impossible, elsewhere, pressure))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in body["entry"]]
    assert statuses == ["201 Created", "422", "404", "201 Created"]
    refused = body["entry"][1]["response"]["outcome"]["issue"][0]
    assert refused["expression"] == ["Bundle.entry[1].resource.valueQuantity"]
    assert "physiologically possible" in refused["diagnostics"]
    assert body["entry"][2]["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[2].resource.encounter"
    ]
    assert body["entry"][3]["response"]["location"].endswith("-bp")
    assert readings(db) == 2


def test_a_replayed_batch_stores_nothing_twice(device, db, dosing_session):
    sent = bundle(
        "batch", observation(dosing_session, minutes=60), observation(dosing_session, minutes=61)
    )
    first = device.post(URL, json=sent)
    again = device.post(URL, json=sent)
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK", "200 OK"]
    assert [e["resource"] for e in again.json()["entry"]] == [
        e["resource"] for e in first.json()["entry"]
    ]
    assert readings(db) == 2
    creates = db.scalar(
        select(func.count())
        .select_from(AuditRecord)
        .where(AuditRecord.entity_type == "vital_readings", AuditRecord.action == "create")
    )
    assert creates == 2


def test_a_transaction_stores_every_entry(device, db, dosing_session):
    sent = bundle(
        "transaction",
        observation(dosing_session),
        blood_pressure(dosing_session, 140, 90, effectiveDateTime="2026-02-02T09:01:00Z"),
    )
    response = device.post(URL, json=sent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created", "201 Created"]
    assert readings(db) == 2


def test_a_transaction_with_one_bad_entry_stores_none_and_names_it(device, db, dosing_session):
    good = observation(dosing_session, minutes=60)
    bad = observation(dosing_session, minutes=61, valueQuantity=quantity(104, "kg"))
    response = device.post(URL, json=bundle("transaction", good, bad))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in body["issue"]] == [["Bundle.entry[1].resource.valueQuantity"]]
    assert readings(db) == 0
    # nothing of the refused transaction was kept: the good entry alone now stores
    assert device.post(URL, json=bundle("transaction", good)).status_code == 200
    assert readings(db) == 1


def test_a_bundle_envelope_vigil_cannot_process_is_refused(device, db, dosing_session):
    wrong_type = device.post(URL, json=bundle("collection", observation(dosing_session)))
    assert wrong_type.status_code == 400
    assert "batch and transaction" in wrong_type.json()["issue"][0]["diagnostics"]
    not_a_bundle = device.post(URL, json=observation(dosing_session))
    assert not_a_bundle.status_code == 400
    put = bundle("batch", observation(dosing_session))
    put["entry"][0]["request"] = {"method": "PUT", "url": "Observation/1"}
    answer = device.post(URL, json=put).json()
    assert answer["entry"][0]["response"]["status"] == "400"
    assert readings(db) == 0


def test_a_bundle_over_the_batch_limit_is_refused_whole(device, db, dosing_session, monkeypatch):
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "batch_size_max", 2)
    sent = bundle("batch", *(observation(dosing_session, minutes=60 + i) for i in range(3)))
    response = device.post(URL, json=sent)
    assert response.status_code == 413
    assert "at most 2" in response.json()["issue"][0]["diagnostics"]
    assert readings(db) == 0
