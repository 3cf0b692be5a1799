"""define.xml (CDISC Define-XML 2.1) of a study's SDTM datasets, made from the same metadata the
datasets are written from (``metadata``, ``terminology``): one ItemGroupDef per dataset of
``DATASETS`` in order, one ItemDef per variable (name, label, data type, length), the CodeLists
of the controlled terms Vigil writes, SDTMIG 3.4 as the standard, and the ``--DTC`` convention
stated once (a CommentDef every date/time variable points at), and MedDRA as the external
dictionary of the AE coding variables, with the versions the study's events were coded with.
Metadata only: no trial data, so nothing to mask."""

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime

from app.exports.sdtm.design_rows import SDTMIG_VERSION
from app.exports.sdtm.metadata import DATASETS, Dataset, DataType, Variable
from app.exports.sdtm.terminology import CODELIST_OF, CODELISTS, CodeList

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DEFINE_VERSION = "2.1.0"
STANDARD_OID = f"STD.SDTMIG.{SDTMIG_VERSION}"
DTC_COMMENT_OID = "COM.DTC"
DTC_CONVENTION = (
    "Dates and times (--DTC) are ISO 8601 text in the local clock time of the participant's "
    "site (the site's time zone, daylight saving included), without a UTC offset, as the SDTMIG "
    "describes; a date without a time is a date-only value (YYYY-MM-DD)."
)
# ODM is the default namespace of the document (ElementTree keeps one prefix per namespace URI)
ET.register_namespace("", ODM_NS)
ET.register_namespace("def", DEF_NS)
ET.register_namespace("xlink", XLINK_NS)

_DATA_TYPES = {
    DataType.STRING: "text",
    DataType.INTEGER: "integer",
    DataType.FLOAT: "float",
    DataType.DATETIME: "datetime",
    DataType.DATE: "date",
}
_NUMERIC_LENGTH = 8  # Define-XML wants a length for integer and float items too
_CLASSES = {
    "DM": ("SPECIAL PURPOSE", "One record per subject"),
    "SV": ("SPECIAL PURPOSE", "One record per actual visit per subject"),
    "SE": ("SPECIAL PURPOSE", "One record per actual Element per subject"),
    "EX": ("INTERVENTIONS", "One record per constant dosing interval per subject"),
    "VS": (
        "FINDINGS",
        "One record per vital sign measurement per time point per visit per subject",
    ),
    "AE": ("EVENTS", "One record per adverse event per subject"),
    "TS": ("TRIAL DESIGN", "One record per trial summary parameter value"),
    "TA": ("TRIAL DESIGN", "One record per planned Element per Arm"),
    "TE": ("TRIAL DESIGN", "One record per planned Element"),
    "TV": ("TRIAL DESIGN", "One record per planned Visit per Arm"),
}
# The AE variables a coder assigns from MedDRA (app/adverse_events/coding.py): terms and codes
MEDDRA_TERMS = frozenset({"AELLT", "AEDECOD", "AEHLT", "AEHLGT", "AEBODSYS", "AESOC"})
MEDDRA_CODES = frozenset({"AELLTCD", "AEPTCD", "AEHLTCD", "AEHLGTCD", "AEBDSYCD", "AESOCCD"})
MEDDRA_TERM_LIST, MEDDRA_CODE_LIST = "CL.MEDDRA", "CL.MEDDRA.CODE"
_DERIVED = frozenset({"VSORNRLO", "VSORNRHI", "VSSTNRLO", "VSSTNRHI", "VSNRIND", "AESTRTPT",
                      "AESTTPT"})  # fmt: skip
_SUPPLEMENTAL = ("RELATIONSHIP", "One record per supplemental qualifier per parent record")
_TRIAL_DESIGN = frozenset({"TS", "TA", "TE", "TV"})


def _odm(tag: str) -> str:
    return f"{{{ODM_NS}}}{tag}"


def _def(tag: str) -> str:
    return f"{{{DEF_NS}}}{tag}"


def _description(parent: ET.Element, text: str) -> None:
    translated = ET.SubElement(ET.SubElement(parent, _odm("Description")), _odm("TranslatedText"))
    translated.set(XML_LANG, "en")
    translated.text = text


def item_oid(dataset: Dataset, variable: Variable) -> str:
    """The same OID as the Dataset-JSON column's itemOID (``writers.columns``)."""
    return f"IT.{dataset.name}.{variable.name}"


def _class_of(dataset: Dataset) -> tuple[str, str]:
    if dataset.name.startswith("SUPP"):
        return _SUPPLEMENTAL
    return _CLASSES.get(dataset.name, ("SPECIAL PURPOSE", f"One record per {dataset.label}"))


def _origin(dataset: Dataset, variable: Variable) -> tuple[str, str | None]:
    """(def:Origin Type, Source) of a variable."""
    if dataset.name in _TRIAL_DESIGN:
        return "Protocol", None
    if variable.name in {"STUDYID", "DOMAIN", "USUBJID"}:
        return "Assigned", "Sponsor"
    if variable.name in MEDDRA_TERMS | MEDDRA_CODES:
        return "Assigned", "Sponsor"  # by the coder
    derived = {"EPOCH", "TAETORD", "ETCD", "ELEMENT"} | _DERIVED
    if variable.name.endswith("SEQ") or variable.name in derived:
        return "Derived", "Sponsor"
    return "Collected", "Investigator"


def _item_group(mdv: ET.Element, dataset: Dataset) -> None:
    name = dataset.name
    klass, structure = _class_of(dataset)
    group = ET.SubElement(
        mdv,
        _odm("ItemGroupDef"),
        {
            "OID": f"IG.{name}",
            "Name": name,
            "Repeating": "No" if name in _TRIAL_DESIGN or name == "DM" else "Yes",
            "IsReferenceData": "Yes" if name in _TRIAL_DESIGN else "No",
            "SASDatasetName": name,
            "Domain": name[4:] if name.startswith("SUPP") else name,
            "Purpose": "Tabulation",
            _def("Structure"): structure,
            _def("ArchiveLocationID"): f"LF.{name}",
            _def("StandardOID"): STANDARD_OID,
        },
    )
    _description(group, dataset.label)
    for order, variable in enumerate(dataset.variables, start=1):
        ref = {
            "ItemOID": item_oid(dataset, variable),
            "OrderNumber": str(order),
            "Mandatory": "Yes" if variable.core.value == "Req" else "No",
        }
        if variable.key_sequence is not None:
            ref["KeySequence"] = str(variable.key_sequence)
        ET.SubElement(group, _odm("ItemRef"), ref)
    ET.SubElement(group, _def("Class"), {"Name": klass})
    leaf = ET.SubElement(
        group, _def("leaf"), {"ID": f"LF.{name}", f"{{{XLINK_NS}}}href": f"{name.lower()}.xpt"}
    )
    ET.SubElement(leaf, _def("title")).text = f"{name.lower()}.xpt"


def _item(mdv: ET.Element, dataset: Dataset, variable: Variable) -> None:
    attributes = {
        "OID": item_oid(dataset, variable),
        "Name": variable.name,
        "DataType": _DATA_TYPES[variable.data_type],
        "SASFieldName": variable.name,
    }
    if variable.data_type is DataType.STRING:
        attributes["Length"] = str(variable.length or 200)
    elif variable.numeric:
        attributes["Length"] = str(_NUMERIC_LENGTH)
    else:  # an ISO 8601 date/time: no length, and the convention it is written in
        attributes[_def("CommentOID")] = DTC_COMMENT_OID
    item = ET.SubElement(mdv, _odm("ItemDef"), attributes)
    _description(item, variable.label)
    codelist = CODELIST_OF.get(variable.name)
    if variable.name in MEDDRA_TERMS:
        codelist = MEDDRA_TERM_LIST
    elif variable.name in MEDDRA_CODES:
        codelist = MEDDRA_CODE_LIST
    if codelist is not None:
        ET.SubElement(item, _odm("CodeListRef"), {"CodeListOID": codelist})
    origin_type, source = _origin(dataset, variable)
    origin = {"Type": origin_type} | ({"Source": source} if source else {})
    ET.SubElement(item, _def("Origin"), origin)


def _codelist(mdv: ET.Element, codelist: CodeList) -> None:
    element = ET.SubElement(
        mdv, _odm("CodeList"), {"OID": codelist.oid, "Name": codelist.name, "DataType": "text"}
    )
    decoded = any(term.decode for term in codelist.terms)
    for term in codelist.terms:
        extended = {_def("ExtendedValue"): "Yes"} if term.value in codelist.extended else {}
        if decoded:
            item = ET.SubElement(
                element, _odm("CodeListItem"), {"CodedValue": term.value, **extended}
            )
            decode = ET.SubElement(ET.SubElement(item, _odm("Decode")), _odm("TranslatedText"))
            decode.set(XML_LANG, "en")
            decode.text = term.decode or term.value
        else:
            ET.SubElement(element, _odm("EnumeratedItem"), {"CodedValue": term.value, **extended})
    ET.SubElement(element, _odm("Alias"), {"Context": "nci:ExtCodeID", "Name": codelist.nci_code})


def _meddra(mdv: ET.Element, versions: list[str]) -> None:
    """MedDRA as an external dictionary (licensed: Vigil holds no copy), once for its terms and
    once for its codes, with the versions the study's events were coded with (when any are)."""
    dictionary = {"Dictionary": "MEDDRA"} | ({"Version": ", ".join(versions)} if versions else {})
    for oid, name, data_type in (
        (MEDDRA_TERM_LIST, "MedDRA", "text"),
        (MEDDRA_CODE_LIST, "MedDRA Code", "integer"),
    ):
        element = ET.SubElement(
            mdv, _odm("CodeList"), {"OID": oid, "Name": name, "DataType": data_type}
        )
        ET.SubElement(element, _odm("ExternalCodeList"), dictionary)


def _used_codelists() -> list[CodeList]:
    used = {
        CODELIST_OF[v.name] for d in DATASETS.values() for v in d.variables if v.name in CODELIST_OF
    }
    return [codelist for codelist in CODELISTS if codelist.oid in used]


def define_xml(study_code: str, meddra_versions: Iterable[str] = ()) -> bytes:
    """define.xml of the SDTM datasets of ``study_code``, UTF-8 with its XML declaration;
    ``meddra_versions``: the MedDRA versions its adverse events were coded with."""
    odm = ET.Element(
        _odm("ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"vigil/{study_code}/define",
            "CreationDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "ODMVersion": "1.3.2",
            "Originator": "Vigil",
            "SourceSystem": "Vigil",
            _def("Context"): "Submission",
        },
    )
    study = ET.SubElement(odm, _odm("Study"), {"OID": study_code})
    variables = ET.SubElement(study, _odm("GlobalVariables"))
    ET.SubElement(variables, _odm("StudyName")).text = study_code
    description = f"SDTM datasets of study {study_code}"
    ET.SubElement(variables, _odm("StudyDescription")).text = description
    ET.SubElement(variables, _odm("ProtocolName")).text = study_code
    mdv = ET.SubElement(
        study,
        _odm("MetaDataVersion"),
        {
            "OID": f"MDV.{study_code}.SDTMIG.{SDTMIG_VERSION}",
            "Name": f"{study_code} SDTMIG {SDTMIG_VERSION}",
            "Description": description,
            _def("DefineVersion"): DEFINE_VERSION,
        },
    )
    standards = ET.SubElement(mdv, _def("Standards"))
    ET.SubElement(
        standards,
        _def("Standard"),
        {
            "OID": STANDARD_OID,
            "Name": "SDTMIG",
            "Type": "IG",
            "Version": SDTMIG_VERSION,
            "Status": "Final",
        },
    )
    for dataset in DATASETS.values():
        _item_group(mdv, dataset)
    for dataset in DATASETS.values():
        for variable in dataset.variables:
            _item(mdv, dataset, variable)
    for codelist in _used_codelists():
        _codelist(mdv, codelist)
    _meddra(mdv, sorted(set(meddra_versions)))
    comment = ET.SubElement(mdv, _def("CommentDef"), {"OID": DTC_COMMENT_OID})
    _description(comment, DTC_CONVENTION)
    ET.indent(odm)
    return ET.tostring(odm, encoding="UTF-8", xml_declaration=True)
