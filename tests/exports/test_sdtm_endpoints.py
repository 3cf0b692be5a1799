"""SDTM exports through the API, on both databases: every format of every dataset is what its
standard says (Dataset-JSON against CDISC's schemas, XPT read back by pyreadstat), a blinded
caller never sees an arm, no name or note text leaves, every VS row traces to a stored reading,
readings entered in error are left out without renumbering the others, and the export is an
audit event of the caller."""

import csv
import io
import json
import math
import tempfile
import uuid
import zipfile
from pathlib import Path

import jsonschema
import pyreadstat
import pytest
from sqlalchemy import select

from app.auth.blinding import MASKED
from app.exports.sdtm import xpt
from app.exports.sdtm.metadata import DATASETS
from app.models import AuditRecord, User, VitalReading
from app.permissions import Role
from app.vitals import service as vitals
from tests.conftest import T0

API = "/api/v1/exports/sdtm"
STANDARDS = Path("/work/shared/standards/dataset-json")
DOMAINS = tuple(name.lower() for name in DATASETS)
EXAMPLES = tuple(d for d in DOMAINS if (STANDARDS / "examples" / f"{d}.json").exists())


@pytest.fixture
def sponsor(export_api, two_sites, client_as):
    return client_as(Role.SPONSOR)


def _get(client, domain: str, file_format: str, study: str = "MAPP-T"):
    response = client.get(f"{API}/{domain}.{file_format}", params={"study": study})
    assert response.status_code == 200, response.text
    return response


def _json(client, domain: str) -> dict:
    return json.loads(_get(client, domain, "json").content)


def _rows(client, domain: str) -> list[dict]:
    document = _json(client, domain)
    names = [column["name"] for column in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


def _schema(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((STANDARDS / name).read_text())
    if name == "dataset-ndjson-schema.json":
        # CDISC's NDJSON schema refers to #/$defs/Column and #/$defs/SourceSystem but nests
        # them inside properties instead of defining them: take them, unchanged, from the JSON
        # form's schema (the same definitions), keeping the NDJSON schema's own.
        full = json.loads((STANDARDS / "dataset.schema.json").read_text())
        schema["$defs"] = {**full["$defs"], **schema["$defs"]}
    validator = jsonschema.validators.validator_for(schema)
    return validator(schema)


@pytest.mark.parametrize("domain", DOMAINS)
def test_dataset_json_validates_against_the_cdisc_schema(sponsor, domain):
    document = _json(sponsor, domain)
    _schema("dataset.schema.json").validate(document)
    assert document["records"] == len(document["rows"])
    # two_sites has no AE that needs a qualifier: test_supplemental.py fills SUPPAE in
    assert (len(document["rows"]) > 0) is (domain != "suppae")
    assert [c["name"] for c in document["columns"]] == list(DATASETS[domain.upper()].names)


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_ndjson_form_validates_and_holds_the_same_rows(sponsor, domain):
    lines = _get(sponsor, domain, "ndjson").text.splitlines()
    meta, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    _schema("dataset-ndjson-schema.json").validate(meta)
    assert meta["records"] == len(rows)
    assert rows == _json(sponsor, domain)["rows"]


@pytest.mark.parametrize("domain", EXAMPLES)
def test_variables_follow_cdisc_example_names_labels_and_order(domain):
    example = json.loads((STANDARDS / "examples" / f"{domain}.json").read_text())
    labels = {column["name"]: column["label"] for column in example["columns"]}
    order = [column["name"] for column in example["columns"]]
    ours = [v for v in DATASETS[domain.upper()].variables if v.name in labels]
    assert len(ours) >= 5
    for variable in ours:
        assert variable.label == labels[variable.name], variable.name
    shared = [v.name for v in ours]
    assert shared == [name for name in order if name in shared]


@pytest.mark.parametrize("domain", DOMAINS)
def test_csv_has_the_variables_and_the_rows_of_the_json(sponsor, domain):
    table = list(csv.reader(io.StringIO(_get(sponsor, domain, "csv").text)))
    expected = _json(sponsor, domain)
    assert table[0] == [column["name"] for column in expected["columns"]]
    as_text = [["" if v is None else str(v) for v in row] for row in expected["rows"]]
    assert table[1:] == as_text


@pytest.mark.parametrize("domain", DOMAINS)
def test_xpt_reads_back_with_the_same_values(sponsor, domain):
    response = _get(sponsor, domain, "xpt")
    with tempfile.NamedTemporaryFile(suffix=".xpt") as file:
        file.write(response.content)
        file.flush()
        frame, meta = pyreadstat.read_xport(file.name)
    expected = _json(sponsor, domain)
    dataset = DATASETS[domain.upper()]
    assert list(frame.columns) == list(dataset.names)
    assert meta.column_labels == [v.label for v in dataset.variables]
    assert len(frame) == expected["records"]
    for got, row in zip(frame.itertuples(index=False), expected["rows"], strict=True):
        for variable, value, sent in zip(dataset.variables, got, row, strict=True):
            if variable.numeric and sent is None:
                assert math.isnan(value), variable.name  # a missing number reads back as NaN
            elif variable.numeric:
                assert value == pytest.approx(sent), variable.name
            else:
                assert value == ("" if sent is None else str(sent)), variable.name


def test_a_blinded_caller_never_sees_an_arm(sponsor, two_sites):
    dm = _rows(sponsor, "dm")
    assert {row["ARMCD"] for row in dm} == {MASKED}
    assert {row["ARM"] for row in dm} == {MASKED}
    assert {row["EXTRT"] for row in _rows(sponsor, "ex")} == {MASKED}
    arms = {two_sites.a.participant.arm_code, two_sites.b.participant.arm_code}
    # TS names the trial (its title, its investigational drug), as the published protocol
    # does: no participant, no row per arm (tests/exports/test_trial_design.py)
    for domain in (d for d in DOMAINS if d != "ts"):
        for file_format in ("csv", "json", "ndjson"):
            text = _get(sponsor, domain, file_format).text
            for word in (*arms, "MDMA-assisted therapy", "Placebo with therapy"):
                assert word not in text, (domain, file_format, word)


def test_an_unblinded_caller_sees_the_arms(export_api, two_sites, client):
    dm = {row["SUBJID"]: row for row in _rows(client, "dm")}
    participant = two_sites.a.participant
    assert dm[participant.subject_id]["ARMCD"] == participant.arm_code
    assert dm[participant.subject_id]["ACTARMCD"] == participant.arm_code
    assert dm[participant.subject_id]["ARM"] in {"MDMA-assisted therapy", "Placebo with therapy"}


def test_no_user_name_and_no_note_text_in_any_file(sponsor, two_sites, db):
    people = list(db.scalars(select(User)))
    words = {two_sites.a.note.text, two_sites.b.note.text}
    words |= {person.username for person in people} | {person.display_name for person in people}
    for domain in (name.lower() for name in DATASETS):  # the SUPP datasets too
        for file_format in ("csv", "json", "ndjson", "xpt"):
            content = _get(sponsor, domain, file_format).content
            for word in words:
                assert word.encode() not in content, (domain, file_format, word)


def test_every_vs_row_traces_to_a_stored_reading(sponsor, db):
    rows = _rows(sponsor, "vs")
    assert rows
    measures = {"SYSBP": "sysbp_mmhg", "DIABP": "diabp_mmhg", "PULSE": "pulse_bpm"}
    for row in rows:
        reading = db.get(VitalReading, uuid.UUID(row["VSSPID"]))
        assert reading is not None
        assert row["VSSTRESN"] == getattr(reading, measures[row["VSTESTCD"]])


def test_times_are_the_sites_local_clock_time_and_dm_agrees_with_ex(sponsor, two_sites, db):
    two_sites.a.site.timezone = "Europe/Berlin"
    db.flush()
    subject = f"MAPP-T-{two_sites.a.participant.subject_id}"
    vs = [row for row in _rows(sponsor, "vs") if row["USUBJID"] == subject]
    assert {row["VSDTC"] for row in vs} == {"2026-02-02T10:00:00"}  # T0 + 60 min, UTC+1
    ex = [row for row in _rows(sponsor, "ex") if row["USUBJID"] == subject]
    (dm,) = [row for row in _rows(sponsor, "dm") if row["USUBJID"] == subject]
    assert dm["RFXSTDTC"] == dm["RFSTDTC"] == min(row["EXSTDTC"] for row in ex)
    assert dm["RFXENDTC"] == max(row["EXSTDTC"] for row in ex)


def _second_reading(db, dosing_session):
    reading, _ = vitals.ingest_one(
        db,
        dosing_session,
        {
            "id": "0b8f1f7e-3a44-4d7e-9a55-1c3c1b0d2e01",
            "measured_at": T0.replace(hour=9, minute=10).isoformat(),
            "observations": [{"code": "TEMP", "value": 99.5, "unit": "F"}],
        },
        "seed",
    )
    return reading


def test_entered_in_error_readings_are_left_out_and_the_others_keep_their_seq(
    sponsor, two_sites, db
):
    first = two_sites.a.reading
    second = _second_reading(db, two_sites.a.dosing_session)
    before = {(r["VSSPID"], r["VSTESTCD"]): r["VSSEQ"] for r in _rows(sponsor, "vs")}
    temp = before[(str(second.id), "TEMP")]
    vitals.enter_in_error(db, first, "Recorded against the wrong participant")
    after = {(r["VSSPID"], r["VSTESTCD"]): r["VSSEQ"] for r in _rows(sponsor, "vs")}
    assert str(first.id) not in {spid for spid, _ in after}
    assert after[(str(second.id), "TEMP")] == temp
    assert {key: seq for key, seq in before.items() if key[0] != str(first.id)} == after
    temp_row = next(r for r in _rows(sponsor, "vs") if r["VSSPID"] == str(second.id))
    assert (temp_row["VSORRES"], temp_row["VSORRESU"]) == ("99.5", "F")
    assert temp_row["VSSTRESU"] == "C" and temp_row["VSSTRESN"] == pytest.approx(37.5, abs=0.05)


def test_ae_rows_carry_seriousness_flags_and_leave_an_uncoded_event_empty(sponsor):
    rows = _rows(sponsor, "ae")
    assert {row["AETERM"] for row in rows} == {"Headache"}
    for row in rows:
        assert row["AEDECOD"] == ""
        assert row["AESER"] == "N"
        flags = ("AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE")
        assert all(row[flag] == "N" for flag in flags)
        assert row["AESEV"] == "MILD" and row["AEOUT"] == "RECOVERING/RESOLVING"


def test_an_export_is_an_audit_event_of_the_caller(sponsor, two_sites, db):
    _get(sponsor, "vs", "ndjson")
    (record,) = db.scalars(select(AuditRecord).where(AuditRecord.action == "export_sdtm"))
    assert record.actor == f"sponsor:{sponsor.user.username}"
    assert record.entity_id == str(two_sites.study.id)
    assert record.after == {
        "standard": "SDTMIG 3.4",
        "study": "MAPP-T",
        "dataset": "VS",
        "format": "ndjson",
        "unmasked_fields": [],
    }


@pytest.mark.parametrize(
    ("path", "study", "words"),
    [
        ("vs.csv", "NOPE", "no study has the code 'NOPE'"),
        ("lb.csv", "MAPP-T", "exports no SDTM dataset 'lb'"),
        ("vs.sas7bdat", "MAPP-T", "no 'sas7bdat' files"),
    ],
)
def test_what_vigil_does_not_export_is_a_clear_404(sponsor, path, study, words):
    response = sponsor.get(f"{API}/{path}", params={"study": study})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


def test_only_the_sponsor_exports(export_api, two_sites, client_as):
    for role in (Role.COORDINATOR, Role.THERAPIST, Role.CLINICIAN, Role.PHARMACIST):
        response = client_as(role, [two_sites.a.site]).get(
            f"{API}/dm.csv", params={"study": "MAPP-T"}
        )
        assert response.status_code == 403, role


def test_vs_time_points_are_the_due_times_the_readings_answer(sponsor, two_sites, db):
    second = _second_reading(db, two_sites.a.dosing_session)  # TEMP 40 min after the dose
    rows = _rows(sponsor, "vs")
    scheduled = [r for r in rows if r["VSSPID"] == str(two_sites.a.reading.id)]
    assert {r["VSTESTCD"] for r in scheduled} == {"SYSBP", "DIABP", "PULSE"}
    for row in scheduled:  # measured 30 min after the initial dose (08:30): due every 30 min
        assert (row["VSTPT"], row["VSTPTNUM"], row["VSELTM"]) == ("30 MIN POST-DOSE", 30, "PT30M")
        assert row["VSTPTREF"] == "INITIAL DOSE"
        assert row["VSRFTDTC"] == "2026-02-02T08:30:00"
    (unscheduled,) = [r for r in rows if r["VSSPID"] == str(second.id)]
    # TEMP is due hourly from the dose with 15 min of grace: 40 min answers no due time
    assert (unscheduled["VSTPT"], unscheduled["VSTPTNUM"], unscheduled["VSELTM"]) == ("", None, "")
    assert unscheduled["VSTPTREF"] == unscheduled["VSRFTDTC"] == ""


def test_a_dataset_too_big_for_one_xpt_comes_as_a_zip_of_parts(sponsor, monkeypatch):
    monkeypatch.setattr(xpt, "MAX_ROWS", 2)  # VS holds 6 rows: three parts
    response = _get(sponsor, "vs", "xpt")
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="MAPP-T-vs.zip"' in response.headers["content-disposition"]
    with (
        zipfile.ZipFile(io.BytesIO(response.content)) as archive,
        tempfile.TemporaryDirectory() as d,
    ):
        assert archive.namelist() == ["vs1.xpt", "vs2.xpt", "vs3.xpt"]
        archive.extractall(d)
        spids = []
        for name in archive.namelist():
            frame, _ = pyreadstat.read_xport(str(Path(d) / name))
            assert len(frame) == 2
            spids += list(frame["VSSPID"])
    assert spids == [row["VSSPID"] for row in _rows(sponsor, "vs")]
