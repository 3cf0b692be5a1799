"""The controlled terms Vigil's SDTM datasets use, for define.xml's CodeLists: per codelist the
values Vigil writes (a subset of the CDISC codelist named by its NCI code), and which variables
take their values from it. A variable of the same name takes the same codelist in every dataset
(the flags AESER ... AESMIE share No Yes Response, EPOCH is EPOCH wherever it is)."""

from dataclasses import dataclass

from app.clinical.measures import MEASURES
from app.exports.sdtm import trial_design
from app.exports.sdtm.design_rows import TS_PARAMETERS


@dataclass(frozen=True)
class Term:
    value: str
    decode: str = ""  # a CodeListItem's Decode; '' for an EnumeratedItem


@dataclass(frozen=True)
class CodeList:
    oid: str
    name: str
    nci_code: str  # the CDISC/NCI codelist this one is a subset of
    terms: tuple[Term, ...]
    extended: frozenset[str] = frozenset()  # values Vigil adds to an extensible codelist


def _terms(*values: str) -> tuple[Term, ...]:
    return tuple(Term(value) for value in values)


CODELISTS = (
    CodeList("CL.NY", "No Yes Response", "C66742", _terms("N", "Y")),
    CodeList("CL.SEX", "Sex", "C66731", _terms("F", "M", "U")),
    CodeList("CL.AGEU", "Age Unit", "C66781", _terms("YEARS")),
    CodeList(
        "CL.AESEV",
        "Severity/Intensity Scale for Adverse Events",
        "C66769",
        _terms("MILD", "MODERATE", "SEVERE"),
    ),
    CodeList(
        "CL.OUT",
        "Outcome of Event",
        "C66768",
        _terms(
            "FATAL",
            "NOT RECOVERED/NOT RESOLVED",
            "RECOVERED/RESOLVED",
            "RECOVERED/RESOLVED WITH SEQUELAE",
            "RECOVERING/RESOLVING",
            "UNKNOWN",
        ),
    ),
    CodeList(
        "CL.ACN",
        "Action Taken with Study Treatment",
        "C66767",
        _terms(
            "DOSE NOT CHANGED", "DRUG INTERRUPTED", "DRUG WITHDRAWN", "NOT APPLICABLE", "UNKNOWN"
        ),
    ),
    CodeList("CL.ROUTE", "Route of Administration Response", "C66729", _terms("ORAL")),
    CodeList("CL.FRM", "Pharmaceutical Dosage Form", "C66726", _terms("CAPSULE")),
    CodeList(
        "CL.VSTESTCD",
        "Vital Signs Test Code",
        "C66741",
        tuple(Term(code, measure.name) for code, measure in MEASURES.items()),
    ),
    CodeList("CL.EPOCH", "Epoch", "C99079", _terms(*trial_design.EPOCHS)),
    CodeList(
        "CL.TSPARMCD",
        "Trial Summary Parameter Test Code",
        "C66738",
        tuple(Term(code, name) for code, name in TS_PARAMETERS.items()),
        extended=frozenset({"PROTID", "PROTVER"}),
    ),
)

CODELIST_OF = {
    "SEX": "CL.SEX",
    "AGEU": "CL.AGEU",
    "AESEV": "CL.AESEV",
    "AEOUT": "CL.OUT",
    "AEACN": "CL.ACN",
    "EXROUTE": "CL.ROUTE",
    "EXDOSFRM": "CL.FRM",
    "VSTESTCD": "CL.VSTESTCD",
    "EPOCH": "CL.EPOCH",
    "TSPARMCD": "CL.TSPARMCD",
    **{
        flag: "CL.NY"
        for flag in ("AESER", "AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE")
    },
}
