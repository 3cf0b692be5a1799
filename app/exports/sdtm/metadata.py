"""The one source of truth for the SDTM datasets Vigil writes: every variable's name, label, type,
length, core and order. The row builders (``rows``), every writer and the Dataset-JSON columns
read it, so the three formats cannot disagree. Names, order and labels follow CDISC's own example
datasets (shared/standards/dataset-json/examples, SDTMIG 3.3) where SDTMIG 3.4 agrees; Vigil
leaves out the permissible variables it has no data for (RACE, study days...). The trial design
datasets (TS, TA, TE, TV) and SE/SV come from the protocol (``design_rows``).
"""

from dataclasses import dataclass
from enum import StrEnum


class DataType(StrEnum):
    """Dataset-JSON v1.1 data types; ``--DTC`` values are ISO 8601 text of type datetime/date."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DATETIME = "datetime"
    DATE = "date"


class Core(StrEnum):
    REQUIRED = "Req"
    EXPECTED = "Exp"
    PERMISSIBLE = "Perm"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    data_type: DataType
    core: Core
    length: int | None = None  # character variables only (the XPT v5 limit is 200)
    key_sequence: int | None = None

    @property
    def numeric(self) -> bool:
        return self.data_type in (DataType.INTEGER, DataType.FLOAT)


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    variables: tuple[Variable, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(variable.name for variable in self.variables)


S, INT, F, DT, D = (
    DataType.STRING,
    DataType.INTEGER,
    DataType.FLOAT,
    DataType.DATETIME,
    DataType.DATE,
)
REQ, EXP, PERM = Core.REQUIRED, Core.EXPECTED, Core.PERMISSIBLE


def _identifiers(domain: str, *, seq: bool = True) -> tuple[Variable, ...]:
    head = (
        Variable("STUDYID", "Study Identifier", S, REQ, 64, key_sequence=1),
        Variable("DOMAIN", "Domain Abbreviation", S, REQ, 2),
        Variable("USUBJID", "Unique Subject Identifier", S, REQ, 100, key_sequence=2),
    )
    return (*head, Variable(f"{domain}SEQ", "Sequence Number", INT, REQ)) if seq else head


DM = Dataset(
    "DM",
    "Demographics",
    (
        *_identifiers("DM", seq=False),
        Variable("SUBJID", "Subject Identifier for the Study", S, REQ, 32),
        Variable("RFSTDTC", "Subject Reference Start Date/Time", DT, EXP, 19),
        Variable("RFXSTDTC", "Date/Time of First Study Treatment", DT, EXP, 19),
        Variable("RFXENDTC", "Date/Time of Last Study Treatment", DT, EXP, 19),
        Variable("RFICDTC", "Date/Time of Informed Consent", D, EXP, 10),
        Variable("SITEID", "Study Site Identifier", S, REQ, 32),
        Variable("AGE", "Age", INT, EXP),
        Variable("AGEU", "Age Units", S, EXP, 5),
        Variable("SEX", "Sex", S, REQ, 1),
        Variable("ARMCD", "Planned Arm Code", S, EXP, 32),
        Variable("ARM", "Description of Planned Arm", S, EXP, 200),
        Variable("ACTARMCD", "Actual Arm Code", S, EXP, 32),
        Variable("ACTARM", "Description of Actual Arm", S, EXP, 200),
        Variable("ARMNRS", "Reason Arm and/or Actual Arm is Null", S, EXP, 14),
    ),
)

EX = Dataset(
    "EX",
    "Exposure",
    (
        *_identifiers("EX"),
        Variable("EXSPID", "Sponsor-Defined Identifier", S, PERM, 36),
        Variable("EXTRT", "Name of Treatment", S, REQ, 32, key_sequence=3),
        Variable("EXDOSE", "Dose", F, EXP),
        Variable("EXDOSU", "Dose Units", S, EXP, 2),
        Variable("EXDOSFRM", "Dose Form", S, EXP, 7),
        Variable("EXROUTE", "Route of Administration", S, PERM, 4),
        Variable("VISITNUM", "Visit Number", F, PERM),
        Variable("VISIT", "Visit Name", S, PERM, 200),
        Variable("EXSTDTC", "Start Date/Time of Treatment", DT, EXP, 19, key_sequence=4),
        Variable("EXENDTC", "End Date/Time of Treatment", DT, PERM, 19),
    ),
)

VS = Dataset(
    "VS",
    "Vital Signs",
    (
        *_identifiers("VS"),
        Variable("VSSPID", "Sponsor-Defined Identifier", S, PERM, 36),
        Variable("VSTESTCD", "Vital Signs Test Short Name", S, REQ, 8, key_sequence=3),
        Variable("VSTEST", "Vital Signs Test Name", S, REQ, 40),
        Variable("VSORRES", "Result or Finding in Original Units", S, EXP, 20),
        Variable("VSORRESU", "Original Units", S, EXP, 10),
        Variable("VSORNRLO", "Normal Range Lower Limit in Orig Unit", S, PERM, 20),
        Variable("VSORNRHI", "Normal Range Upper Limit in Orig Unit", S, PERM, 20),
        Variable("VSSTRESC", "Character Result/Finding in Std Format", S, EXP, 20),
        Variable("VSSTRESN", "Numeric Result/Finding in Standard Units", F, EXP),
        Variable("VSSTRESU", "Standard Units", S, EXP, 10),
        Variable("VSSTNRLO", "Normal Range Lower Limit-Std Units", F, PERM),
        Variable("VSSTNRHI", "Normal Range Upper Limit-Std Units", F, PERM),
        Variable("VSNRIND", "Normal/Reference Range Indicator", S, PERM, 8),
        Variable("VISITNUM", "Visit Number", F, EXP, key_sequence=4),
        Variable("VISIT", "Visit Name", S, PERM, 200),
        Variable("VSDTC", "Date/Time of Measurements", DT, EXP, 19, key_sequence=5),
        Variable("VSTPT", "Planned Time Point Name", S, PERM, 40),
        Variable("VSTPTNUM", "Planned Time Point Number", INT, PERM),
        Variable("VSELTM", "Planned Elapsed Time from Time Point Ref", S, PERM, 20),
        Variable("VSTPTREF", "Time Point Reference", S, PERM, 40),
        Variable("VSRFTDTC", "Date/Time of Reference Time Point", DT, PERM, 19),
    ),
)

AE = Dataset(
    "AE",
    "Adverse Events",
    (
        *_identifiers("AE"),
        Variable("AESPID", "Sponsor-Defined Identifier", S, PERM, 36),
        Variable("AETERM", "Reported Term for the Adverse Event", S, REQ, 200),
        Variable("AELLT", "Lowest Level Term", S, EXP, 100),
        Variable("AELLTCD", "Lowest Level Term Code", INT, EXP),
        Variable("AEDECOD", "Dictionary-Derived Term", S, REQ, 100, key_sequence=3),
        Variable("AEPTCD", "Preferred Term Code", INT, EXP),
        Variable("AEHLT", "High Level Term", S, EXP, 100),
        Variable("AEHLTCD", "High Level Term Code", INT, EXP),
        Variable("AEHLGT", "High Level Group Term", S, EXP, 100),
        Variable("AEHLGTCD", "High Level Group Term Code", INT, EXP),
        Variable("AEBODSYS", "Body System or Organ Class", S, EXP, 100),
        Variable("AEBDSYCD", "Body System or Organ Class Code", INT, EXP),
        Variable("AESOC", "Primary System Organ Class", S, EXP, 100),
        Variable("AESOCCD", "Primary System Organ Class Code", INT, EXP),
        Variable("AESEV", "Severity/Intensity", S, PERM, 8),
        Variable("AESER", "Serious Event", S, EXP, 1),
        Variable("AEACN", "Action Taken with Study Treatment", S, EXP, 16),
        Variable("AEREL", "Causality", S, EXP, 16),
        Variable("AEOUT", "Outcome of Adverse Event", S, PERM, 32),
        Variable("AESCONG", "Congenital Anomaly or Birth Defect", S, PERM, 1),
        Variable("AESDISAB", "Persist or Signif Disability/Incapacity", S, PERM, 1),
        Variable("AESDTH", "Results in Death", S, PERM, 1),
        Variable("AESHOSP", "Requires or Prolongs Hospitalization", S, PERM, 1),
        Variable("AESLIFE", "Is Life Threatening", S, PERM, 1),
        Variable("AESMIE", "Other Medically Important Serious Event", S, PERM, 1),
        Variable("AETOXGR", "Standard Toxicity Grade", S, PERM, 1),
        Variable("AESTDTC", "Start Date/Time of Adverse Event", DT, EXP, 19, key_sequence=4),
        Variable("AEENDTC", "End Date/Time of Adverse Event", DT, EXP, 19),
        Variable("AESTRTPT", "Start Relative to Reference Time Point", S, PERM, 10),
        Variable("AESTTPT", "Start Reference Time Point", S, PERM, 19),
    ),
)

SV = Dataset(
    "SV",
    "Subject Visits",
    (
        *_identifiers("SV", seq=False),
        Variable("VISITNUM", "Visit Number", F, REQ, key_sequence=4),
        Variable("VISIT", "Visit Name", S, PERM, 200),
        Variable("EPOCH", "Epoch", S, PERM, 20),
        Variable("SVSTDTC", "Start Date/Time of Visit", DT, EXP, 19, key_sequence=3),
        Variable("SVENDTC", "End Date/Time of Visit", DT, PERM, 19),
    ),
)

SE = Dataset(
    "SE",
    "Subject Elements",
    (
        *_identifiers("SE"),
        Variable("ETCD", "Element Code", S, REQ, 8, key_sequence=4),
        Variable("ELEMENT", "Description of Element", S, PERM, 200),
        Variable("TAETORD", "Planned Order of Element within Arm", INT, EXP),
        Variable("EPOCH", "Epoch", S, EXP, 20),
        Variable("SESTDTC", "Start Date/Time of Element", DT, REQ, 19, key_sequence=3),
        Variable("SEENDTC", "End Date/Time of Element", DT, EXP, 19),
    ),
)


_TRIAL = (  # the trial design datasets have no subject
    Variable("STUDYID", "Study Identifier", S, REQ, 64, key_sequence=1),
    Variable("DOMAIN", "Domain Abbreviation", S, REQ, 2),
)


TS = Dataset(
    "TS",
    "Trial Summary",
    (
        *_TRIAL,
        Variable("TSSEQ", "Sequence Number", INT, REQ, key_sequence=3),
        Variable("TSPARMCD", "Trial Summary Parameter Short Name", S, REQ, 8, key_sequence=2),
        Variable("TSPARM", "Trial Summary Parameter", S, REQ, 40),
        Variable("TSVAL", "Parameter Value", S, EXP, 200),
        Variable("TSVALNF", "Parameter Null Flavor", S, PERM, 8),
        Variable("TSVALCD", "Parameter Value Code", S, EXP, 20),
        Variable("TSVCDREF", "Name of the Reference Terminology", S, EXP, 20),
        Variable("TSVCDVER", "Version of the Reference Terminology", S, EXP, 20),
    ),
)

TA = Dataset(
    "TA",
    "Trial Arms",
    (
        *_TRIAL,
        Variable("ARMCD", "Planned Arm Code", S, REQ, 32, key_sequence=2),
        Variable("ARM", "Description of Planned Arm", S, REQ, 200),
        Variable("TAETORD", "Planned Order of Element within Arm", INT, REQ, key_sequence=3),
        Variable("ETCD", "Element Code", S, REQ, 8),
        Variable("ELEMENT", "Description of Element", S, PERM, 200),
        Variable("TABRANCH", "Branch", S, EXP, 200),
        Variable("TATRANS", "Transition Rule", S, EXP, 200),
        Variable("EPOCH", "Epoch", S, REQ, 20),
    ),
)

TE = Dataset(
    "TE",
    "Trial Elements",
    (
        *_TRIAL,
        Variable("ETCD", "Element Code", S, REQ, 8, key_sequence=2),
        Variable("ELEMENT", "Description of Element", S, REQ, 200),
        Variable("TESTRL", "Rule for Start of Element", S, REQ, 200),
        Variable("TEENRL", "Rule for End of Element", S, PERM, 200),
        Variable("TEDUR", "Planned Duration of Element", S, PERM, 20),
    ),
)

TV = Dataset(
    "TV",
    "Trial Visits",
    (
        *_TRIAL,
        Variable("VISITNUM", "Visit Number", F, REQ, key_sequence=2),
        Variable("VISIT", "Visit Name", S, PERM, 200),
        Variable("ARMCD", "Planned Arm Code", S, EXP, 32, key_sequence=3),
        Variable("TVSTRL", "Visit Start Rule", S, REQ, 200),
        Variable("TVENRL", "Visit End Rule", S, PERM, 200),
    ),
)


def _supplemental(domain: str) -> Dataset:
    """SUPP--: the qualifiers of ``domain`` that have no standard variable (SDTMIG 3.4 section
    8.4), one row per qualifier value, tied to its parent rows by IDVAR/IDVARVAL."""
    return Dataset(
        f"SUPP{domain}",
        f"Supplemental Qualifiers for {domain}",
        (
            Variable("STUDYID", "Study Identifier", S, REQ, 64, key_sequence=1),
            Variable("RDOMAIN", "Related Domain Abbreviation", S, REQ, 2, key_sequence=2),
            Variable("USUBJID", "Unique Subject Identifier", S, REQ, 100, key_sequence=3),
            Variable("IDVAR", "Identifying Variable", S, EXP, 8, key_sequence=4),
            Variable("IDVARVAL", "Identifying Variable Value", S, EXP, 40, key_sequence=5),
            Variable("QNAM", "Qualifier Variable Name", S, REQ, 8, key_sequence=6),
            Variable("QLABEL", "Qualifier Variable Label", S, REQ, 40),
            Variable("QVAL", "Data Value", S, REQ, 200),
            Variable("QORIG", "Origin", S, REQ, 20),
            Variable("QEVAL", "Evaluator", S, EXP, 40),
        ),
    )


SUPPAE, SUPPVS = _supplemental("AE"), _supplemental("VS")

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset for dataset in (DM, SV, SE, EX, VS, AE, SUPPAE, SUPPVS, TS, TA, TE, TV)
}
