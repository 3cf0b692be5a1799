"""A FHIR R4 vital-signs Observation as the Vigil reading it stands for.

One Observation is one reading (one measurement moment):
- ``identifier``: the reading's client-generated UUID, as ``{"system": "urn:vigil:vital-reading",
  "value": "<uuid>"}`` or ``{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:<uuid>"}``; a
  retry sends the same one, so it is stored once;
- ``encounter``: the dosing session, ``{"reference": "Encounter/<session id>"}`` or
  ``{"identifier": {"system": "urn:vigil:dosing-session", "value": "<session id>"}}``;
- ``effectiveDateTime`` (or ``effectiveInstant``): when it was measured, with its offset;
- ``category`` vital-signs; ``status`` final, amended or corrected;
- ``code`` a LOINC code of DESIGN.md section 3 with a UCUM ``valueQuantity``, or the blood
  pressure panel 85354-9 whose ``component``s carry systolic 8480-6 and diastolic 8462-4 (a
  component with a ``dataAbsentReason`` is left out). ``[degF]`` is converted to Celsius.

The structure is validated first with the FHIR R4 models of fhir.resources (its R4B package,
which holds R4's Observation unchanged for these elements); then Vigil's own checks, which name
the element at fault. The values themselves (possible ranges, units) are checked by the vitals
service as for any reading, and their problems are reported at these elements too.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from app.clinical.measures import BP_PANEL_LOINC, MEASURES
from app.exports.fhir import codes
from app.fhir_input.outcome import FhirRefusal, Issue

DOSING_SESSION_SYSTEM = "urn:vigil:dosing-session"
URI_SYSTEM = "urn:ietf:rfc:3986"
STORED_STATUSES = ("final", "amended", "corrected")
CODE_OF_LOINC = {measure.loinc: code for code, measure in MEASURES.items()}
BP_COMPONENTS = {MEASURES["SYSBP"].loinc: "SYSBP", MEASURES["DIABP"].loinc: "DIABP"}


@dataclass(frozen=True)
class MappedReading:
    dosing_session_id: uuid.UUID
    reading: dict[str, Any]  # a VitalReadingCreate as JSON
    expressions: dict[str, str]  # reading field -> the FHIRPath it came from
    suffix: str  # of the Observation's id as Vigil exports it: '<reading id>-<suffix>'


def _known_codes() -> str:
    singles = [f"{m.loinc} ({m.name})" for m in MEASURES.values() if m.code not in BP_KINDS]
    return f"{BP_PANEL_LOINC} (blood pressure panel), " + ", ".join(singles)


BP_KINDS = frozenset(BP_COMPONENTS.values())


def _structure(resource: Any, at: str) -> list[Issue]:
    if not isinstance(resource, dict):
        return [
            Issue("structure", f"a resource is a JSON object, not {type(resource).__name__}", at)
        ]
    kind = resource.get("resourceType")
    if kind != "Observation":
        sent = kind or "a resource without a resourceType"
        return [
            Issue(
                "not-supported",
                f"Vigil accepts vital-signs Observations here, not {sent}",
                f"{at}.resourceType",
            )
        ]
    try:
        Observation.model_validate(resource)
    except ValidationError as exc:
        return [
            Issue(
                "structure",
                str(error["msg"]).removeprefix("Value error, "),
                ".".join([at, *(str(part) for part in error["loc"])]),
            )
            for error in exc.errors()
        ]
    return []


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value).removeprefix("urn:uuid:"))
    except ValueError:
        return None


def _reading_id(resource: dict[str, Any], at: str) -> uuid.UUID | Issue:
    for identifier in resource.get("identifier") or []:
        system, value = identifier.get("system"), identifier.get("value")
        if system == codes.VITAL_READING or (
            system == URI_SYSTEM and str(value).startswith("urn:uuid:")
        ):
            found = _uuid(value)
            if found is None:
                return Issue("value", f"identifier {value!r} is not a UUID", f"{at}.identifier")
            return found
    return Issue(
        "required",
        f"the reading's client-generated UUID goes in identifier, with system "
        f"{codes.VITAL_READING} (or {URI_SYSTEM} and a urn:uuid: value), so that a retry is "
        "stored once",
        f"{at}.identifier",
    )


def _dosing_session(resource: dict[str, Any], at: str) -> uuid.UUID | Issue:
    encounter = resource.get("encounter") or {}
    reference = str(encounter.get("reference") or "")
    identifier = encounter.get("identifier") or {}
    if reference.startswith("Encounter/"):
        found = _uuid(reference.removeprefix("Encounter/"))
    elif identifier.get("system") == DOSING_SESSION_SYSTEM:
        found = _uuid(identifier.get("value"))
    else:
        return Issue(
            "required",
            "encounter names the dosing session: {'reference': 'Encounter/<session id>'} or "
            f"{{'identifier': {{'system': '{DOSING_SESSION_SYSTEM}', 'value': '<session id>'}}}}"
            " (GET /api/v1/dosing-sessions lists them)",
            f"{at}.encounter",
        )
    if found is None:
        return Issue("value", "the dosing session's id is not a UUID", f"{at}.encounter")
    return found


def _measured_at(resource: dict[str, Any], at: str) -> str | Issue:
    for name in ("effectiveDateTime", "effectiveInstant"):
        if name in resource:
            value = str(resource[name])
            if "T" not in value:
                return Issue(
                    "value",
                    f"{name} {value!r} is a date; a reading needs the time of day with its offset",
                    f"{at}.{name}",
                )
            return value
    return Issue(
        "required",
        "effectiveDateTime (ISO 8601 with offset) says when the reading was measured",
        f"{at}.effective[x]",
    )


def _is_vital_sign(resource: dict[str, Any]) -> bool:
    return any(
        coding.get("system") == codes.OBSERVATION_CATEGORY and coding.get("code") == "vital-signs"
        for category in resource.get("category") or []
        for coding in category.get("coding") or []
    )


def _loinc(concept: dict[str, Any]) -> str | None:
    for coding in concept.get("coding") or []:
        if coding.get("system") == codes.LOINC:
            return str(coding.get("code"))
    return None


def _quantity(
    holder: dict[str, Any], measure: str, path: str, issues: list[Issue]
) -> dict[str, Any] | None:
    quantity = holder.get("valueQuantity")
    if quantity is None:
        if "dataAbsentReason" not in holder:
            issues.append(Issue("required", f"{measure} has no valueQuantity", path))
        return None
    if quantity.get("system") not in (None, codes.UCUM):
        issues.append(
            Issue("value", f"the unit of {measure} is a UCUM code (system {codes.UCUM})", path)
        )
        return None
    unit = quantity.get("code") or quantity.get("unit")
    if "value" not in quantity or not unit:
        issues.append(Issue("required", f"{measure} needs a value and a UCUM unit code", path))
        return None
    return {"code": measure, "unit": str(unit), "value": quantity["value"]}


def _observations(
    resource: dict[str, Any], at: str
) -> tuple[list[dict[str, Any]], list[str], str, list[Issue]]:
    """(the reading's observations, the FHIRPath of each, the export id suffix, issues)."""
    issues: list[Issue] = []
    loinc = _loinc(resource.get("code") or {})
    found: list[dict[str, Any]] = []
    paths: list[str] = []
    if loinc == BP_PANEL_LOINC:
        for i, component in enumerate(resource.get("component") or []):
            path = f"{at}.component[{i}]"
            code = BP_COMPONENTS.get(_loinc(component.get("code") or {}) or "")
            if code is None:
                issues.append(
                    Issue(
                        "not-supported",
                        "a blood pressure panel's components are systolic (8480-6) and "
                        "diastolic (8462-4) pressure",
                        f"{path}.code",
                    )
                )
                continue
            if (
                observation := _quantity(component, code, f"{path}.valueQuantity", issues)
            ) is not None:
                found.append(observation)
                paths.append(f"{path}.valueQuantity")
        if not found and not issues:
            issues.append(
                Issue(
                    "required",
                    "the blood pressure panel has no measured component",
                    f"{at}.component",
                )
            )
        return found, paths, "bp", issues
    code = CODE_OF_LOINC.get(loinc or "")
    if code is None or code in BP_KINDS:
        shown = f"LOINC {loinc}" if loinc else "an Observation without a LOINC code"
        hint = " (send blood pressure as the 85354-9 panel)" if code in BP_KINDS else ""
        issues.append(
            Issue(
                "not-supported",
                f"{shown} is not a vital sign Vigil records{hint}; it records {_known_codes()}",
                f"{at}.code",
            )
        )
        return [], [], "", issues
    observation = _quantity(resource, code, f"{at}.valueQuantity", issues)
    if observation is None:
        return [], [], code.lower(), issues
    return [observation], [f"{at}.valueQuantity"], code.lower(), issues


def map_observation(resource: Any, at: str = "Observation") -> MappedReading:
    """The reading an Observation stands for; FhirRefusal (400 for its structure, 422 for
    what Vigil does not record) with every issue, each at its FHIRPath from ``at``."""
    if issues := _structure(resource, at):
        raise FhirRefusal(400, issues)
    issues = []
    if resource.get("status") not in STORED_STATUSES:
        issues.append(
            Issue(
                "value",
                f"status {resource.get('status')!r}: Vigil stores final, amended or corrected "
                "readings (a stored reading is withdrawn with POST /api/v1/vital-readings/{id}/"
                "entered-in-error)",
                f"{at}.status",
            )
        )
    if not _is_vital_sign(resource):
        issues.append(
            Issue(
                "not-supported",
                "only vital-signs Observations (category "
                f"{codes.OBSERVATION_CATEGORY}|vital-signs) are accepted",
                f"{at}.category",
            )
        )
    reading_id = _reading_id(resource, at)
    session_id = _dosing_session(resource, at)
    measured_at = _measured_at(resource, at)
    observations, paths, suffix, value_issues = _observations(resource, at)
    issues += [x for x in (reading_id, session_id, measured_at) if isinstance(x, Issue)]
    issues += value_issues
    if issues:
        raise FhirRefusal(422, issues)
    assert isinstance(reading_id, uuid.UUID) and isinstance(session_id, uuid.UUID)
    expressions = {f"observations.{i}": path for i, path in enumerate(paths)}
    expressions |= {
        "observations": f"{at}.code",
        "measured_at": f"{at}.effectiveDateTime",
        "id": f"{at}.identifier",
        "reading": at,
    }
    reading = {"id": str(reading_id), "measured_at": measured_at, "observations": observations}
    return MappedReading(session_id, reading, expressions, suffix)
