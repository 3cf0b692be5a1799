"""Vigil's records as FHIR R4 resources (plain dicts, ready for JSON): pure functions, no queries.

What leaves is pseudonymous and blinded (docs/exports.md): a Patient is its subject id and
gender only; a ResearchSubject carries its arm only when the caller may see it; no user, no
note, no free-text reason (an entered-in-error reason, a status reason) is ever exported. An
adverse event's verbatim term is a clinical term and leaves as the event's text.
"""

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from app.clinical.measures import BP_PANEL_LOINC, MEASURES, Measure
from app.exports.fhir import codes
from app.models import AdverseEvent, Participant, Study
from app.vocabulary import RecordStatus

Resource = dict[str, Any]


class StoredReading(Protocol):
    """What the Observations of a vital reading are made of: a VitalReading, or a row of its
    columns (the export selects only these)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def measured_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def record_status(self) -> str: ...
    @property
    def sysbp_mmhg(self) -> float | None: ...
    @property
    def diabp_mmhg(self) -> float | None: ...
    @property
    def pulse_bpm(self) -> float | None: ...
    @property
    def resp_rate_per_min(self) -> float | None: ...
    @property
    def temp_c(self) -> float | None: ...
    @property
    def spo2_pct(self) -> float | None: ...


READING_COLUMNS = (
    "id",
    "measured_at",
    "received_at",
    "record_status",
    *(measure.column for measure in MEASURES.values()),
)


def _reference(resource_type: str, record_id: uuid.UUID) -> dict[str, str]:
    return {"reference": f"{resource_type}/{record_id}"}


def _instant(moment: datetime) -> str:
    return moment.isoformat()


def research_study(study: Study) -> Resource:
    return {
        "resourceType": "ResearchStudy",
        "id": str(study.id),
        "identifier": [{"system": codes.STUDY_CODE, "value": study.code}],
        "title": study.name,
        "status": "active",
    }


def patient(participant: Participant) -> Resource:
    """Pseudonymous: the subject id and the gender, nothing else (no name, no birth date)."""
    return {
        "resourceType": "Patient",
        "id": str(participant.id),
        "identifier": [{"system": codes.SUBJECT_ID, "value": participant.subject_id}],
        "gender": codes.GENDER.get(participant.sex, "unknown"),
    }


def research_subject(participant: Participant, *, arm: str | None) -> Resource:
    """``arm``: the participant's arm when the caller sees it, else None (left out)."""
    subject: Resource = {
        "resourceType": "ResearchSubject",
        "id": str(participant.id),
        "identifier": [{"system": codes.SUBJECT_ID, "value": participant.subject_id}],
        "status": codes.SUBJECT_STATUS[participant.status],
        "study": _reference("ResearchStudy", participant.study_id),
        "individual": _reference("Patient", participant.id),
    }
    if participant.enrolled_on is not None:
        subject["period"] = {"start": participant.enrolled_on.isoformat()}
    if arm is not None:
        subject["assignedArm"] = arm
    return subject


def _quantity(measure: Measure, value: float) -> dict[str, Any]:
    return {"value": value, "unit": measure.ucum, "system": codes.UCUM, "code": measure.ucum}


def _loinc(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": codes.LOINC, "code": code, "display": display}], "text": display}


_VITAL_SIGNS_CATEGORY = [
    {
        "coding": [
            {"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}
        ],
        "text": "Vital Signs",
    }
]
_NOT_PERFORMED = {
    "coding": [{"system": codes.DATA_ABSENT_REASON, "code": "not-performed"}],
    "text": "not measured with this reading",
}


def _observation(common: Resource, reading_id: str, suffix: str, profile: str) -> Resource:
    return {
        "resourceType": "Observation",
        "id": f"{reading_id}-{suffix}",
        "meta": {"profile": [codes.VITAL_SIGNS_PROFILE, profile]},
        **common,
    }


def _blood_pressure(reading: StoredReading, common: Resource, reading_id: str) -> Resource:
    resource = _observation(common, reading_id, "bp", codes.BP_PROFILE)
    resource["code"] = _loinc(BP_PANEL_LOINC, codes.BP_PANEL_DISPLAY)
    components = []
    for code in ("SYSBP", "DIABP"):
        measure = MEASURES[code]
        component: dict[str, Any] = {
            "code": _loinc(measure.loinc, codes.VITAL_SIGN_PROFILES[code][1])
        }
        value = getattr(reading, measure.column)
        if value is None:
            component["dataAbsentReason"] = _NOT_PERFORMED
        else:
            component["valueQuantity"] = _quantity(measure, value)
        components.append(component)
    resource["component"] = components
    return resource


def observations(reading: StoredReading, participant_id: uuid.UUID) -> Iterator[Resource]:
    """The Observations of one stored reading: the blood pressure panel (when either pressure
    was measured) and one per other measure. Each names the reading in its identifier; a
    reading marked entered in error gives Observations of status ``entered-in-error``."""
    reading_id = str(reading.id)
    entered_in_error = reading.record_status == RecordStatus.ENTERED_IN_ERROR
    common: Resource = {
        "identifier": [{"system": codes.VITAL_READING, "value": reading_id}],
        "status": "entered-in-error" if entered_in_error else "final",
        "category": _VITAL_SIGNS_CATEGORY,
        "subject": _reference("Patient", participant_id),
        "effectiveDateTime": _instant(reading.measured_at),
        "issued": _instant(reading.received_at),
    }
    if reading.sysbp_mmhg is not None or reading.diabp_mmhg is not None:
        yield _blood_pressure(reading, common, reading_id)
    for code, (profile, display) in codes.VITAL_SIGN_PROFILES.items():
        if code in ("SYSBP", "DIABP"):
            continue
        measure = MEASURES[code]
        value = getattr(reading, measure.column)
        if value is None:
            continue
        resource = _observation(common, reading_id, code.lower(), profile)
        resource["code"] = _loinc(measure.loinc, display)
        resource["valueQuantity"] = _quantity(measure, value)
        yield resource


def _event(event: AdverseEvent) -> dict[str, Any]:
    """The verbatim term as text; with the MedDRA PT (and its version) once the event is coded."""
    concept: dict[str, Any] = {"text": event.verbatim_term}
    if event.coded:
        concept["coding"] = [
            {
                "system": codes.MEDDRA,
                "version": event.meddra_version,
                "code": event.meddra_pt_code,
                "display": event.meddra_pt,
            }
        ]
    return concept


def adverse_event(event: AdverseEvent, study_id: uuid.UUID) -> Resource:
    """A valid adverse event (R4 AdverseEvent has no status: one entered in error is not
    exported). Seriousness is serious/non-serious (the criteria have no R4 element)."""
    serious = "serious" if event.serious else "non-serious"
    outcome, outcome_display = codes.AE_OUTCOMES[event.outcome]
    resource: Resource = {
        "resourceType": "AdverseEvent",
        "id": str(event.id),
        "identifier": {"system": codes.ADVERSE_EVENT, "value": str(event.id)},
        "actuality": "actual",
        "event": _event(event),
        "subject": _reference("Patient", event.participant_id),
        "date": _instant(event.onset_at),
        "detected": _instant(event.site_aware_at),
        "recordedDate": _instant(event.created_at),
        "seriousness": {
            "coding": [
                {
                    "system": codes.AE_SERIOUSNESS,
                    "code": serious,
                    "display": "Serious" if event.serious else "Non-serious",
                }
            ]
        },
        "severity": {
            "coding": [
                {
                    "system": codes.AE_SEVERITY,
                    "code": event.severity,
                    "display": codes.AE_SEVERITIES[event.severity],
                }
            ]
        },
        "outcome": {
            "coding": [{"system": codes.AE_OUTCOME, "code": outcome, "display": outcome_display}]
        },
        "study": [_reference("ResearchStudy", study_id)],
    }
    return resource
