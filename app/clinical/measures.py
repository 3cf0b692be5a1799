"""The vital-sign measures Vigil knows: codes, units, and what is physiologically possible.

Pure data, no database: the protocol schema, the ingest path, the rules engine and the exports
all read it. Codes are SDTM VSTESTCD; each has a LOINC code and a UCUM unit for FHIR.

Sources of the FHIR codes: the FHIR R4 vital signs profiles (hl7.org/fhir/R4/
observation-vitalsigns.html), which fix one LOINC code and one UCUM unit each: heart rate 8867-4
``/min``, respiratory rate 9279-1 ``/min``, body temperature 8310-5 ``Cel``, oxygen saturation
2708-6 ``%``, and the blood pressure panel 85354-9 with systolic 8480-6 and diastolic 8462-4
components in ``mm[Hg]`` (the same codes as DESIGN.md section 3). The SDTM codes and units are
CDISC controlled terminology (VSTESTCD, VSRESU).
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Measure:
    code: str  # SDTM VSTESTCD
    name: str  # SDTM VSTEST
    unit: str  # SDTM unit, the canonical unit Vigil stores
    ucum: str  # FHIR unit
    loinc: str
    column: str  # column on vital_readings
    possible_min: float  # below this no living participant measures
    possible_max: float
    decimals: int


MEASURES: dict[str, Measure] = {
    m.code: m
    for m in (
        Measure(
            "SYSBP", "Systolic Blood Pressure", "mmHg", "mm[Hg]", "8480-6", "sysbp_mmhg", 40, 300, 0
        ),
        Measure(
            "DIABP",
            "Diastolic Blood Pressure",
            "mmHg",
            "mm[Hg]",
            "8462-4",
            "diabp_mmhg",
            15,
            200,
            0,
        ),
        Measure("PULSE", "Pulse Rate", "beats/min", "/min", "8867-4", "pulse_bpm", 20, 300, 0),
        Measure(
            "RESP",
            "Respiratory Rate",
            "breaths/min",
            "/min",
            "9279-1",
            "resp_rate_per_min",
            2,
            80,
            0,
        ),
        Measure("TEMP", "Temperature", "C", "Cel", "8310-5", "temp_c", 25, 45, 1),
        Measure("OXYSAT", "Oxygen Saturation", "%", "%", "2708-6", "spo2_pct", 40, 100, 0),
    )
}

BP_PANEL_LOINC = "85354-9"


def _identity(value: float) -> float:
    return value


def _fahrenheit_to_celsius(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


# Units a client may send, per measure, and how to bring each to the canonical unit.
_UNIT_ALIASES: dict[str, dict[str, Callable[[float], float]]] = {
    "SYSBP": {"mmHg": _identity, "mm[Hg]": _identity},
    "DIABP": {"mmHg": _identity, "mm[Hg]": _identity},
    "PULSE": {"beats/min": _identity, "/min": _identity, "bpm": _identity},
    "RESP": {"breaths/min": _identity, "/min": _identity},
    "TEMP": {
        "C": _identity,
        "Cel": _identity,
        "F": _fahrenheit_to_celsius,
        "[degF]": _fahrenheit_to_celsius,
    },
    "OXYSAT": {"%": _identity},
}


class UnknownMeasure(ValueError):
    pass


class UnknownUnit(ValueError):
    pass


def get_measure(code: str) -> Measure:
    try:
        return MEASURES[code]
    except KeyError:
        raise UnknownMeasure(
            f"unknown measure {code!r}; known measures are {', '.join(MEASURES)}"
        ) from None


def accepted_units(code: str) -> list[str]:
    return list(_UNIT_ALIASES[get_measure(code).code])


def exact_canonical(code: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` converted to the measure's canonical unit, unrounded."""
    measure = get_measure(code)
    convert = _UNIT_ALIASES[measure.code].get(unit)
    if convert is None:
        raise UnknownUnit(
            f"unit {unit!r} is not a unit of {code}; use one of {', '.join(accepted_units(code))}"
        )
    return convert(value)


def to_canonical(code: str, value: float, unit: str) -> float:
    """The canonical value as stored: one decimal more than the measure's resolution."""
    return round(exact_canonical(code, value, unit), get_measure(code).decimals + 1)
