"""The FHIR R4 code systems, profiles and value maps the bulk export uses: plain data.

Sources (FHIR R4 4.0.1, http://hl7.org/fhir/R4/):
- vital signs profiles: observation-vitalsigns.html (category ``vital-signs``, one LOINC code
  and one UCUM unit per profile; the blood pressure panel 85354-9 with its systolic 8480-6 and
  diastolic 8462-4 components);
- ResearchSubject.status: valueset-research-subject-status.html;
- AdverseEvent seriousness, severity and outcome: valueset-adverse-event-seriousness.html,
  valueset-adverse-event-severity.html, valueset-adverse-event-outcome.html;
- data absent reasons: valueset-data-absent-reason.html;
- MedDRA: the HL7 terminology's URI for it (terminology.hl7.org/CodeSystem-mdr.html).
The LOINC codes and UCUM units of Vigil's measures are in app/clinical/measures.py.
"""

from types import MappingProxyType

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
AE_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"

# Identifier systems of Vigil's own records: an exported resource names the stored record it
# comes from, so every resource traces back to it.
STUDY_CODE = "urn:vigil:study"
SUBJECT_ID = "urn:vigil:subject"
VITAL_READING = "urn:vigil:vital-reading"
ADVERSE_EVENT = "urn:vigil:adverse-event"

VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"

# Vigil measure (SDTM VSTESTCD) -> (the R4 vital signs profile, the LOINC display).
VITAL_SIGN_PROFILES = MappingProxyType(
    {
        "SYSBP": ("", "Systolic blood pressure"),  # a component of the BP panel only
        "DIABP": ("", "Diastolic blood pressure"),  # a component of the BP panel only
        "PULSE": ("http://hl7.org/fhir/StructureDefinition/heartrate", "Heart rate"),
        "RESP": ("http://hl7.org/fhir/StructureDefinition/resprate", "Respiratory rate"),
        "TEMP": ("http://hl7.org/fhir/StructureDefinition/bodytemp", "Body temperature"),
        "OXYSAT": (
            "http://hl7.org/fhir/StructureDefinition/oxygensat",
            "Oxygen saturation in Arterial blood",
        ),
    }
)
BP_PANEL_DISPLAY = "Blood pressure panel with all children optional"

# Vigil participant status -> ResearchSubject.status.
SUBJECT_STATUS = MappingProxyType(
    {
        "screening": "screening",
        "enrolled": "on-study",
        "randomised": "on-study",
        "in_treatment": "on-study-intervention",
        "completed": "off-study",
        "withdrawn": "withdrawn",
        "screen_failed": "ineligible",
    }
)

# Vigil sex (F/M/U) -> Patient.gender.
GENDER = MappingProxyType({"F": "female", "M": "male", "U": "unknown"})

# Vigil adverse event outcome -> AdverseEvent.outcome.
AE_OUTCOMES = MappingProxyType(
    {
        "recovered": ("resolved", "Resolved"),
        "recovering": ("recovering", "Recovering"),
        "not_recovered": ("ongoing", "Ongoing"),
        "recovered_with_sequelae": ("resolvedWithSequelae", "Resolved with Sequelae"),
        "fatal": ("fatal", "Fatal"),
        "unknown": ("unknown", "Unknown"),
    }
)
AE_SEVERITIES = MappingProxyType({"mild": "Mild", "moderate": "Moderate", "severe": "Severe"})
