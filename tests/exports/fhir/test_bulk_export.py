"""GET /api/v1/exports/fhir/{ResourceType}.ndjson: what a sponsor pulls is valid FHIR R4, follows
the vital signs profile, traces to the stored records, and is blinded and pseudonymous."""

import uuid
from datetime import timedelta
from unittest.mock import patch

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import select

from app.adverse_events import coding
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate, MeddraCoding
from app.alerts.evaluation import Judgment
from app.assessments.records import EnteredInError
from app.auth.principal import Principal
from app.exports.fhir import stream
from app.models import AuditRecord, User, VitalReading
from app.permissions import Role
from app.vitals import service as vitals
from tests.conftest import T0
from tests.exports.fhir.conftest import RESOURCE_TYPES, pull, pull_text

pytestmark = pytest.mark.usefixtures("reader_on_the_test_transaction")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# The FHIR R4 vital signs profiles (observation-vitalsigns.html), written out here on their own.
PROFILE = {
    "8867-4": ("/min", "heartrate"),
    "9279-1": ("/min", "resprate"),
    "8310-5": ("Cel", "bodytemp"),
    "2708-6": ("%", "oxygensat"),
}
# What each measure's value sits in, to check the exported value against the stored reading.
COLUMN = {
    "8480-6": "sysbp_mmhg",
    "8462-4": "diabp_mmhg",
    "8867-4": "pulse_bpm",
    "9279-1": "resp_rate_per_min",
    "8310-5": "temp_c",
    "2708-6": "spo2_pct",
}


def _ingest(db, dosing_session, minutes, observations):
    with patch.object(vitals.evaluation, "judge_session", return_value=Judgment([], [], [])):
        reading, _ = vitals.ingest_one(
            db,
            dosing_session,
            {
                "id": str(uuid.uuid4()),
                "measured_at": (T0 + timedelta(minutes=minutes)).isoformat(),
                "observations": observations,
            },
            "test",
        )
    return reading


@pytest.fixture
def trial(db, two_sites):
    """The two-site trial, plus at site S01 a reading of every other measure, a reading of the
    systolic pressure alone and a reading entered in error."""
    a = two_sites.a
    a.full = _ingest(
        db,
        a.dosing_session,
        120,
        [
            {"code": "RESP", "value": 18, "unit": "breaths/min"},
            {"code": "TEMP", "value": 37.4, "unit": "C"},
            {"code": "OXYSAT", "value": 97, "unit": "%"},
        ],
    )
    a.systolic_only = _ingest(
        db, a.dosing_session, 150, [{"code": "SYSBP", "value": 138, "unit": "mmHg"}]
    )
    a.wrong = _ingest(db, a.dosing_session, 180, [{"code": "PULSE", "value": 140, "unit": "/min"}])
    vitals.enter_in_error(db, a.wrong, "Cuff on the wrong participant, Dr Jane Roe noticed")
    return two_sites


def test_every_resource_parses_as_fhir_r4(client, trial):
    for resource_type in RESOURCE_TYPES:
        resources = pull(client, resource_type)
        assert resources, resource_type
        for resource in resources:
            assert resource["resourceType"] == resource_type
            get_fhir_model_class(resource_type).model_validate(resource)


def test_observations_follow_the_vital_signs_profile(client, trial, db):
    patients = {f"Patient/{p['id']}" for p in pull(client, "Patient")}
    observations = pull(client, "Observation")
    readings = {r.id: r for r in db.scalars(select(VitalReading))}
    for observation in observations:
        assert observation["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
        (coding,) = observation["code"]["coding"]
        assert coding["system"] == LOINC
        assert observation["subject"]["reference"] in patients
        reading = readings[uuid.UUID(observation["identifier"][0]["value"])]
        assert observation["effectiveDateTime"] == reading.measured_at.isoformat()
        profiles = observation["meta"]["profile"]
        assert profiles[0] == "http://hl7.org/fhir/StructureDefinition/vitalsigns"
        if coding["code"] == "85354-9":
            assert profiles[1] == "http://hl7.org/fhir/StructureDefinition/bp"
            continue
        unit, profile = PROFILE[coding["code"]]
        assert profiles[1] == f"http://hl7.org/fhir/StructureDefinition/{profile}"
        quantity = observation["valueQuantity"]
        assert (quantity["system"], quantity["code"], quantity["unit"]) == (UCUM, unit, unit)
        assert quantity["value"] == getattr(reading, COLUMN[coding["code"]])


def _by_reading(observations, reading):
    return {
        o["code"]["coding"][0]["code"]: o
        for o in observations
        if o["identifier"] == [{"system": "urn:vigil:vital-reading", "value": str(reading.id)}]
    }


def test_blood_pressure_is_the_panel_with_its_two_components(client, trial):
    observations = pull(client, "Observation")
    seeded = _by_reading(observations, trial.a.reading)  # 150/95 mmHg, pulse 104
    assert set(seeded) == {"85354-9", "8867-4"}
    panel = seeded["85354-9"]
    assert "valueQuantity" not in panel
    assert [
        (c["code"]["coding"][0]["system"], c["code"]["coding"][0]["code"], c["valueQuantity"])
        for c in panel["component"]
    ] == [
        (LOINC, "8480-6", {"value": 150.0, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}),
        (LOINC, "8462-4", {"value": 95.0, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}),
    ]
    assert seeded["8867-4"]["valueQuantity"]["value"] == 104.0

    (alone,) = _by_reading(observations, trial.a.systolic_only).values()
    systolic, diastolic = alone["component"]
    assert systolic["valueQuantity"]["value"] == 138.0
    assert "valueQuantity" not in diastolic
    assert diastolic["dataAbsentReason"]["coding"][0]["code"] == "not-performed"


def test_each_observation_traces_to_a_stored_reading(client, trial, db):
    observations = pull(client, "Observation")
    stored = {str(r.id) for r in db.scalars(select(VitalReading))}
    traced = {o["identifier"][0]["value"] for o in observations}
    assert traced == stored  # every reading exported, nothing that was not stored
    assert len({o["id"] for o in observations}) == len(observations)
    full = _by_reading(observations, trial.a.full)
    assert {code: o["valueQuantity"]["value"] for code, o in full.items()} == {
        "9279-1": 18.0,
        "8310-5": 37.4,
        "2708-6": 97.0,
    }


def test_a_reading_entered_in_error_is_exported_as_entered_in_error(client, trial):
    observations = pull(client, "Observation")
    (wrong,) = _by_reading(observations, trial.a.wrong).values()
    assert wrong["status"] == "entered-in-error"
    others = [o for o in observations if o["id"] != wrong["id"]]
    assert {o["status"] for o in others} == {"final"}
    assert "Jane Roe" not in pull_text(client)  # the reason is not exported


def test_the_patient_is_pseudonymous(client, trial):
    patients = {p["identifier"][0]["value"]: p for p in pull(client, "Patient")}
    assert set(patients) == {"01-001", "02-001"}
    patient = patients["01-001"]
    assert patient == {
        "resourceType": "Patient",
        "id": str(trial.a.participant.id),
        "identifier": [{"system": "urn:vigil:subject", "value": "01-001"}],
        "gender": "female",
    }


def test_adverse_events_carry_seriousness_severity_and_outcome(client, trial, db):
    serious = adverse_events.create(
        db,
        trial.b.participant,
        AdverseEventCreate(
            verbatim_term="Hypertensive crisis",
            onset_at=T0 + timedelta(hours=1),
            severity="severe",
            ctcae_grade=4,
            seriousness_criteria=["hospitalisation"],
            relatedness="probable",
            expectedness="unexpected",
            action_taken="not_applicable",
            outcome="recovered",
        ),
    )
    adverse_events.enter_in_error(
        db, trial.a.adverse_event, EnteredInError(reason="Recorded for the wrong participant")
    )
    events = {e["id"]: e for e in pull(client, "AdverseEvent")}
    assert set(events) == {str(trial.b.adverse_event.id), str(serious.id)}  # not the erroneous
    exported = events[str(serious.id)]
    assert exported["event"] == {"text": "Hypertensive crisis"}
    assert exported["subject"] == {"reference": f"Patient/{trial.b.participant.id}"}
    assert exported["date"] == serious.onset_at.isoformat()
    assert exported["seriousness"]["coding"][0]["code"] == "serious"
    assert exported["severity"]["coding"][0]["code"] == "severe"
    assert exported["outcome"]["coding"][0]["code"] == "resolved"
    assert exported["study"] == [{"reference": f"ResearchStudy/{trial.study.id}"}]
    mild = events[str(trial.b.adverse_event.id)]
    assert mild["seriousness"]["coding"][0]["code"] == "non-serious"


def test_a_coded_adverse_event_carries_its_meddra_preferred_term(client, trial, db):
    body = {
        "meddra_version": "27.1",
        "llt": {"term": "Headache", "code": "10019211"},
        "pt": {"term": "Headache", "code": "10019211"},
        "hlt": {"term": "Headaches NEC", "code": "10019233"},
        "hlgt": {"term": "Headaches", "code": "10019231"},
        "soc": {"term": "Nervous system disorders", "code": "10029205"},
        "reason": "Coded against MedDRA 27.1",
    }
    coding.code(db, trial.a.adverse_event, MeddraCoding.model_validate(body))
    events = {e["id"]: e for e in pull(client, "AdverseEvent")}
    coded = events[str(trial.a.adverse_event.id)]
    parsed = get_fhir_model_class("AdverseEvent").model_validate(coded)
    assert parsed.event.coding[0].code == "10019211"
    assert coded["event"] == {
        "text": "Headache",
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/mdr",
                "version": "27.1",
                "code": "10019211",
                "display": "Headache",
            }
        ],
    }
    assert events[str(trial.b.adverse_event.id)]["event"] == {"text": "Headache"}  # uncoded


def test_a_blinded_caller_never_sees_an_arm(client_as, trial):
    assert trial.a.participant.arm_code in {"MDMA", "PBO"}
    caller = client_as(Role.SPONSOR)
    subjects = pull(caller, "ResearchSubject")
    assert len(subjects) == 2
    for subject in subjects:
        assert "assignedArm" not in subject
        assert "actualArm" not in subject
    text = pull_text(caller)
    assert "MDMA" not in text
    assert "PBO" not in text


def test_an_unblinded_caller_sees_the_assigned_arm_and_the_read_is_audited(client, trial, db):
    subjects = {s["id"]: s for s in pull(client, "ResearchSubject")}
    subject = subjects[str(trial.a.participant.id)]
    assert subject["assignedArm"] == trial.a.participant.arm_code
    assert subject["study"] == {"reference": f"ResearchStudy/{trial.study.id}"}
    assert subject["individual"] == {"reference": f"Patient/{trial.a.participant.id}"}
    assert subject["status"] == "on-study"
    unblinded = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "read_unblinded", AuditRecord.entity_id == str(trial.study.id)
        )
    ).all()
    assert [r.after for r in unblinded] == [{"fields": ["arm_code"]}]


def test_no_user_name_and_no_note_text_leaves(client_as, trial, db):
    text = pull_text(client_as(Role.SPONSOR))
    assert "spoke of the accident" not in text  # the therapist's note
    for user in db.scalars(select(User)):
        assert user.username not in text
        assert user.display_name not in text


def test_each_export_is_audited_naming_who_pulled_what(client_as, trial, db):
    sponsor = client_as(Role.SPONSOR, username="sponsor-dm")
    pull(sponsor, "Observation")
    (record,) = db.scalars(select(AuditRecord).where(AuditRecord.action == "export")).all()
    assert record.actor == "sponsor:sponsor-dm"
    assert record.entity_type == "studies"
    assert record.entity_id == str(trial.study.id)
    assert record.after == {"format": "fhir-ndjson", "resource_type": "Observation", "arms": False}


def test_an_unknown_study_or_resource_type_is_a_problem(client, trial):
    response = client.get("/api/v1/exports/fhir/Patient.ndjson", params={"study": "NOPE"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "NOPE" in response.json()["detail"]
    response = client.get("/api/v1/exports/fhir/Encounter.ndjson", params={"study": "MAPP-T"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_coordinator_may_not_export(client_as, trial):
    coordinator = client_as(Role.COORDINATOR, [trial.a.site])
    response = coordinator.get("/api/v1/exports/fhir/Patient.ndjson", params={"study": "MAPP-T"})
    assert response.status_code == 403


def test_resources_are_built_one_at_a_time_as_the_stream_is_read(db, trial, monkeypatch):
    """The export is a generator over the query's batches: taking the first Observation builds
    the resources of one reading, not of the whole study."""
    built = []
    original = stream.resources.observations

    def counting(reading, participant_id):
        built.append(reading.id)
        return original(reading, participant_id)

    monkeypatch.setattr(stream.resources, "observations", counting)
    sponsor = Principal(uuid.uuid4(), "s", "S", Role.SPONSOR, frozenset(), uuid.uuid4())
    exported = stream.study_resources(db, trial.study, stream.ResourceType.OBSERVATION, sponsor)
    first = next(exported)
    assert len(built) == 1
    assert first["identifier"][0]["value"] == str(built[0])
    rest = list(exported)
    assert len(built) == len(db.scalars(select(VitalReading)).all()) > 1
    assert len(rest) >= len(built)
