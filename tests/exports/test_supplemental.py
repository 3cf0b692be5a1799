"""AE coding and timing, SUPPAE, SUPPVS and the VS normal ranges in the SDTM export, on both
databases: the supplemental datasets are valid Dataset-JSON and XPT like the others, every
qualifier traces to its parent row, a long AETERM comes back whole, and VSNRIND judges each
result against its protocol's reference range."""

import importlib.resources
import json
import tempfile
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta

import pyreadstat
import pytest
import xmlschema

from app import clock
from app.adverse_events import coding
from app.adverse_events import service as adverse_events
from app.adverse_events.schemas import AdverseEventCreate, MeddraCoding
from app.exports.sdtm.metadata import DATASETS
from app.permissions import Role
from app.vitals import service as vitals
from tests.conftest import T0
from tests.exports.test_sdtm_endpoints import _get, _json, _rows, _schema

ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
LONG_TERM = ("Severe throbbing headache behind both eyes with nausea, " * 8).strip()  # 447 chars
# as a coder would enter them from a licensed MedDRA; illustrative: Vigil has no dictionary
MIGRAINE = {
    "meddra_version": "27.1",
    "llt": {"term": "Migraine headache", "code": "10027603"},
    "pt": {"term": "Migraine", "code": "10027599"},
    "hlt": {"term": "Migraine headaches", "code": "10027607"},
    "hlgt": {"term": "Headaches", "code": "10019231"},
    "soc": {"term": "Nervous system disorders", "code": "10029205"},
    "reason": "Coded against MedDRA 27.1",
}


@pytest.fixture
def world(export_api, two_sites, db):
    """two_sites, plus at S01 a graded event of the dosing session with a 447-character term,
    coded in MedDRA, and a reading received at once, on supplemental oxygen, all normal."""
    a = two_sites.a
    event = adverse_events.create(
        db,
        a.participant,
        AdverseEventCreate(
            verbatim_term=LONG_TERM,
            onset_at=T0 + timedelta(hours=2),
            dosing_session_id=a.dosing_session.id,
            severity="moderate",
            ctcae_grade=2,
            relatedness="probable",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovered",
            end_at=T0 + timedelta(hours=5),
        ),
    )
    coding.code(db, event, MeddraCoding.model_validate(MIGRAINE))
    prompt, _ = vitals.ingest_one(
        db,
        a.dosing_session,
        {
            "id": str(uuid.uuid4()),
            "measured_at": (clock.utcnow() - timedelta(minutes=2)).isoformat(),
            "observations": [
                {"code": "SYSBP", "value": 118, "unit": "mmHg"},
                {"code": "PULSE", "value": 100, "unit": "beats/min"},
                {"code": "OXYSAT", "value": 94, "unit": "%"},
                {"code": "TEMP", "value": 98.6, "unit": "F"},
            ],
            "supplemental_oxygen": True,
        },
        "seed",
    )
    two_sites.long_event, two_sites.prompt = event, prompt
    return two_sites


@pytest.fixture
def sponsor(world, client_as):
    return client_as(Role.SPONSOR)


@pytest.mark.parametrize("domain", ["suppae", "suppvs"])
def test_supplemental_datasets_are_valid_dataset_json_csv_and_xpt(sponsor, domain):
    document = _json(sponsor, domain)
    _schema("dataset.schema.json").validate(document)
    dataset = DATASETS[domain.upper()]
    assert [c["name"] for c in document["columns"]] == list(dataset.names)
    assert document["records"] == len(document["rows"]) > 0
    lines = _get(sponsor, domain, "ndjson").text.splitlines()
    meta = json.loads(lines[0])
    _schema("dataset-ndjson-schema.json").validate(meta)
    assert meta["records"] == len(lines) - 1 == document["records"]
    with tempfile.NamedTemporaryFile(suffix=".xpt") as file:
        file.write(_get(sponsor, domain, "xpt").content)
        file.flush()
        frame, xpt_meta = pyreadstat.read_xport(file.name)
    assert list(frame.columns) == list(dataset.names)
    assert xpt_meta.column_labels == [v.label for v in dataset.variables]
    assert [list(row) for row in frame.itertuples(index=False)] == document["rows"]


def test_a_long_aeterm_continues_in_suppae_and_comes_back_whole(sponsor, world):
    (ae,) = [row for row in _rows(sponsor, "ae") if row["AESPID"] == str(world.long_event.id)]
    assert len(ae["AETERM"]) <= 200
    supp = [
        row
        for row in _rows(sponsor, "suppae")
        if (row["USUBJID"], row["IDVAR"], row["IDVARVAL"])
        == (ae["USUBJID"], "AESEQ", str(ae["AESEQ"]))
    ]
    parts = [row for row in supp if row["QNAM"].startswith("AETERM")]
    assert [row["QNAM"] for row in parts] == ["AETERM1", "AETERM2"]
    assert all(len(row["QVAL"]) <= 200 for row in parts)
    assert ae["AETERM"] + "".join(row["QVAL"] for row in parts) == LONG_TERM
    assert parts[0]["QLABEL"] == "Reported Term for the Adverse Event 1"
    versions = {row["QNAM"]: (row["QVAL"], row["QORIG"]) for row in supp}
    assert versions["AETOXVER"] == ("5.0", "Collected")
    assert versions["MEDDRVER"] == ("27.1", "Assigned")
    assert {row["RDOMAIN"] for row in supp} == {"AE"}
    # the XPT of AE, where SAS drops trailing blanks, joins back the same
    with tempfile.NamedTemporaryFile(suffix=".xpt") as file:
        file.write(_get(sponsor, "ae", "xpt").content)
        file.flush()
        frame, _ = pyreadstat.read_xport(file.name)
    (term,) = frame.loc[frame["AESPID"] == str(world.long_event.id), "AETERM"]
    assert term + "".join(row["QVAL"] for row in parts) == LONG_TERM


def test_a_coded_event_carries_the_meddra_hierarchy_and_an_uncoded_one_none(sponsor, world):
    rows = {row["AESPID"]: row for row in _rows(sponsor, "ae")}
    coded = rows[str(world.long_event.id)]
    assert (coded["AELLT"], coded["AELLTCD"]) == ("Migraine headache", 10027603)
    assert (coded["AEDECOD"], coded["AEPTCD"]) == ("Migraine", 10027599)
    assert (coded["AEHLT"], coded["AEHLTCD"]) == ("Migraine headaches", 10027607)
    assert (coded["AEHLGT"], coded["AEHLGTCD"]) == ("Headaches", 10019231)
    assert (coded["AEBODSYS"], coded["AEBDSYCD"]) == ("Nervous system disorders", 10029205)
    assert (coded["AESOC"], coded["AESOCCD"]) == ("Nervous system disorders", 10029205)
    assert coded["AETOXGR"] == "2"
    uncoded = rows[str(world.a.adverse_event.id)]
    assert uncoded["AEDECOD"] == uncoded["AELLT"] == uncoded["AESOC"] == ""
    assert uncoded["AEPTCD"] is None and uncoded["AESOCCD"] is None


def test_an_event_of_a_dosing_session_starts_after_its_initial_dose(sponsor, world, db):
    world.a.site.timezone = "Europe/Berlin"
    db.flush()
    rows = {row["AESPID"]: row for row in _rows(sponsor, "ae")}
    during = rows[str(world.long_event.id)]
    # the initial dose at T0 + 30 min, 09:30 in Berlin; the onset 2 h after T0
    assert (during["AESTRTPT"], during["AESTTPT"]) == ("AFTER", "2026-02-02T09:30:00")
    assert during["AESTDTC"] == "2026-02-02T11:00:00"
    apart = rows[str(world.a.adverse_event.id)]  # recorded without a dosing session
    assert apart["AESTRTPT"] == apart["AESTTPT"] == ""


def test_suppvs_holds_late_receipt_and_supplemental_oxygen_of_the_readings(sponsor, world):
    vs_spids = {row["VSSPID"] for row in _rows(sponsor, "vs")}
    supp = _rows(sponsor, "suppvs")
    assert {row["IDVAR"] for row in supp} == {"VSSPID"}
    assert {row["IDVARVAL"] for row in supp} <= vs_spids
    by_reading = {(row["IDVARVAL"], row["QNAM"]): row["QVAL"] for row in supp}
    late = str(world.a.reading.id)  # measured at T0 + 60 min, received when the test runs
    assert by_reading[(late, "VSRCVDTC")] > "2026-02-02T09:00:00"
    assert (late, "VSOXYSUP") not in by_reading  # not recorded with that reading
    prompt = str(world.prompt.id)
    assert (prompt, "VSRCVDTC") not in by_reading
    assert by_reading[(prompt, "VSOXYSUP")] == "Y"


def test_vs_ranges_and_indicator_come_from_the_protocols_reference_ranges(sponsor, world):
    rows = _rows(sponsor, "vs")
    seed = {row["VSTESTCD"]: row for row in rows if row["VSSPID"] == str(world.a.reading.id)}
    assert (seed["SYSBP"]["VSSTNRLO"], seed["SYSBP"]["VSSTNRHI"]) == (90, 139)
    assert (seed["SYSBP"]["VSORNRLO"], seed["SYSBP"]["VSORNRHI"]) == ("90", "139")
    assert {row["VSNRIND"] for row in seed.values()} == {"HIGH"}  # 150/95, pulse 104
    prompt = {row["VSTESTCD"]: row for row in rows if row["VSSPID"] == str(world.prompt.id)}
    assert prompt["SYSBP"]["VSNRIND"] == "NORMAL"
    assert prompt["PULSE"]["VSNRIND"] == "NORMAL"  # 100: the upper limit is normal
    assert prompt["OXYSAT"]["VSNRIND"] == "LOW"  # 94 %
    temp = prompt["TEMP"]  # 98.6 F reported; ranges in the original unit are in F
    assert (temp["VSORRESU"], temp["VSORNRLO"], temp["VSORNRHI"]) == ("F", "97", "99")
    assert (temp["VSSTNRLO"], temp["VSSTNRHI"], temp["VSNRIND"]) == (36.1, 37.2, "NORMAL")


def test_define_xml_names_meddra_with_the_versions_the_events_were_coded_with(sponsor):
    xsd = importlib.resources.files("odmlib") / "schemas" / "define" / "2.1" / "define2-1-0.xsd"
    response = sponsor.get("/api/v1/exports/studies/MAPP-T/sdtm/define.xml")
    assert response.status_code == 200, response.text
    xmlschema.XMLSchema(str(xsd)).validate(response.content.decode())
    root = ET.fromstring(response.content)
    lists = {c.get("OID"): c for c in root.iter(f"{ODM}CodeList")}
    for oid, data_type in (("CL.MEDDRA", "text"), ("CL.MEDDRA.CODE", "integer")):
        (external,) = lists[oid].iter(f"{ODM}ExternalCodeList")
        assert (external.get("Dictionary"), external.get("Version")) == ("MEDDRA", "27.1")
        assert lists[oid].get("DataType") == data_type
    items = {item.get("Name"): item for item in root.iter(f"{ODM}ItemDef")}
    for name, oid in (("AEDECOD", "CL.MEDDRA"), ("AESOCCD", "CL.MEDDRA.CODE")):
        (ref,) = items[name].iter(f"{ODM}CodeListRef")
        assert ref.get("CodeListOID") == oid
        (origin,) = items[name].iter(f"{DEF}Origin")
        assert (origin.get("Type"), origin.get("Source")) == ("Assigned", "Sponsor")
