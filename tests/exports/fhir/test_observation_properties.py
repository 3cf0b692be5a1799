"""Property: the Observations of any reading are valid R4 and follow the vital signs profile."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fhir.resources.R4B.observation import Observation
from hypothesis import given
from hypothesis import strategies as st

from app.clinical.measures import MEASURES
from app.exports.fhir.resources import observations

LOINC_UCUM = {  # DESIGN.md section 3, written out here on its own
    "SYSBP": ("8480-6", "mm[Hg]"),
    "DIABP": ("8462-4", "mm[Hg]"),
    "PULSE": ("8867-4", "/min"),
    "RESP": ("9279-1", "/min"),
    "TEMP": ("8310-5", "Cel"),
    "OXYSAT": ("2708-6", "%"),
}


@st.composite
def readings(draw):
    values = {}
    for measure in MEASURES.values():
        if draw(st.booleans()):
            value = draw(st.floats(measure.possible_min, measure.possible_max, allow_nan=False))
            values[measure.column] = round(value, measure.decimals + 1)
        else:
            values[measure.column] = None
    measured_at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**8)))
    return SimpleNamespace(
        id=uuid.uuid4(),
        measured_at=measured_at,
        received_at=measured_at + timedelta(seconds=draw(st.integers(0, 3600))),
        record_status=draw(st.sampled_from(["valid", "entered_in_error"])),
        **values,
    )


@given(readings())
def test_every_measure_of_a_reading_is_one_profiled_observation(reading):
    participant_id = uuid.uuid4()
    found = list(observations(reading, participant_id))
    exported: dict[str, float | None] = {}
    for resource in found:
        Observation.model_validate(resource)
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
        assert resource["subject"] == {"reference": f"Patient/{participant_id}"}
        assert resource["effectiveDateTime"] == reading.measured_at.isoformat()
        assert resource["identifier"][0]["value"] == str(reading.id)
        expected_status = "final" if reading.record_status == "valid" else "entered-in-error"
        assert resource["status"] == expected_status
        if resource["code"]["coding"][0]["code"] == "85354-9":
            parts = resource["component"]
        else:
            parts = [resource]
        for part in parts:
            loinc = part["code"]["coding"][0]["code"]
            (code,) = [c for c, (lc, _) in LOINC_UCUM.items() if lc == loinc]
            quantity = part.get("valueQuantity")
            if quantity is None:
                assert part["dataAbsentReason"]["coding"][0]["code"] == "not-performed"
                exported[code] = None
                continue
            assert quantity["system"] == "http://unitsofmeasure.org"
            assert quantity["code"] == quantity["unit"] == LOINC_UCUM[code][1]
            exported[code] = quantity["value"]
    measured = {
        code: getattr(reading, m.column)
        for code, m in MEASURES.items()
        if getattr(reading, m.column) is not None
    }
    assert {code: value for code, value in exported.items() if value is not None} == measured
    assert len({r["id"] for r in found}) == len(found)
