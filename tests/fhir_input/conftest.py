"""A bedside device of the test study's site, signed in with its device token, and FHIR
vital-signs Observations as such a device sends them."""

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import DosingSession, Participant
from app.users.service import create_device
from tests.factories.dosing import T0, make_dosing_session
from tests.factories.trial import make_participant, make_site, make_study

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
]


@pytest.fixture
def dosing_session(db: Session) -> DosingSession:
    """An EXP1 session in progress since T0 (2026-02-02T08:00Z), 80 mg given at T0 + 30 min."""
    participant = make_participant(db, make_site(db, make_study(db)), stage="randomised")
    return make_dosing_session(db, participant, initial_dose_mg=80)


@pytest.fixture
def device(db: Session, api: FastAPI, dosing_session: DosingSession) -> Iterator[TestClient]:
    site_id = db.get_one(Participant, dosing_session.participant_id).site_id
    _, token = create_device(db, "tablet-fhir", site_id)
    with TestClient(
        api, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def quantity(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def observation(
    session: DosingSession,
    loinc: str = "8867-4",
    value: dict[str, Any] | None = None,
    *,
    minutes: float = 60,
    reading_id: uuid.UUID | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A heart rate of 104/min by default, ``minutes`` after T0."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [
            {"system": "urn:vigil:vital-reading", "value": str(reading_id or uuid.uuid4())}
        ],
        "status": "final",
        "category": VITAL_SIGNS,
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "encounter": {"reference": f"Encounter/{session.id}"},
        "effectiveDateTime": (T0 + timedelta(minutes=minutes)).isoformat(),
    }
    if loinc != "85354-9":
        resource["valueQuantity"] = value or quantity(104, "/min")
    return resource | fields


def blood_pressure(session: DosingSession, systolic: float, diastolic: float | None, **fields: Any):
    components = [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": quantity(systolic, "mm[Hg]"),
        },
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}}
        | (
            {"valueQuantity": quantity(diastolic, "mm[Hg]")}
            if diastolic is not None
            else {"dataAbsentReason": {"coding": [{"code": "not-performed"}]}}
        ),
    ]
    return observation(session, "85354-9", component=components, **fields)


def bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": resource, "request": {"method": "POST", "url": "Observation"}}
            for resource in resources
        ],
    }
