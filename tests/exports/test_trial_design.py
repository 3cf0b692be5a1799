"""The trial design datasets (TS, TA, TE, TV), the subjects' visits and elements (SV, SE) and
define.xml, through the API on both databases: the design is the protocol's, a blinded caller
sees no arm in them, every SV row is a stored visit, SE follows what a participant went
through, and define.xml is valid Define-XML 2.1 listing every dataset and variable in order."""

import importlib.resources
import json
import xml.etree.ElementTree as ET
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.auth.blinding import MASKED
from app.exports.sdtm.metadata import DATASETS
from app.exports.sdtm.package import record_package_export, write_package
from app.exports.sdtm.trial_design import design_of
from app.models import AuditRecord, Visit
from app.participants import service as participants
from app.participants.schemas import VisitOutcome, Withdrawal, WithdrawalReason
from app.permissions import Role
from app.protocols.loader import load_protocol_file
from tests.factories.trial import MDMA as MDMA_FILE
from tests.factories.trial import make_participant, make_study

API = "/api/v1/exports"
DEFINE = f"{API}/studies/MAPP-T/sdtm/define.xml"
PROTOCOLS = Path(__file__).parents[2] / "protocols"
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
ARM_LABELS = ("MDMA-assisted therapy", "Placebo with therapy")


@pytest.fixture(scope="module")
def define_schema() -> xmlschema.XMLSchema:
    xsd = importlib.resources.files("odmlib") / "schemas" / "define" / "2.1" / "define2-1-0.xsd"
    return xmlschema.XMLSchema(str(xsd))


@pytest.fixture
def sponsor(export_api, two_sites, client_as):
    return client_as(Role.SPONSOR)


@pytest.fixture
def unblinded(export_api, two_sites, client):
    return client  # the test superuser: an unblinded role with export:read


def _rows(client, domain: str, study: str = "MAPP-T") -> list[dict]:
    response = client.get(f"{API}/sdtm/{domain}.json", params={"study": study})
    assert response.status_code == 200, response.text
    document = json.loads(response.content)
    names = [column["name"] for column in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


def _attend(db, participant_visits: dict[str, Visit], days: dict[str, date]) -> None:
    for code, day in days.items():
        participants.record_outcome(
            db, participant_visits[code], VisitOutcome(status="completed", occurred_on=day)
        )


# --- the design ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mdma-ptsd-phase3.yaml", "psilocybin-single-session.yaml"])
def test_every_arm_runs_from_screening_to_follow_up_over_the_protocols_days(name):
    protocol = load_protocol_file(PROTOCOLS / name).protocol
    design = design_of(protocol)
    assert [arm.code for arm in design.arms] == [arm.code for arm in protocol.arms]
    planned = protocol.visits[-1].day - protocol.visits[0].day
    for arm in design.arms:
        codes = [element.code for element in arm.elements]
        assert codes == ["SCRN", "PREP", arm.code, "FU"]
        assert [e.epoch for e in arm.elements] == [
            "SCREENING",
            "TREATMENT",
            "TREATMENT",
            "FOLLOW-UP",
        ]
        assert sum(int(e.duration[1:-1]) for e in arm.elements) == planned
        for element, following in zip(arm.elements, arm.elements[1:], strict=False):
            assert element.end_rule == following.start_rule


def test_te_and_ta_are_the_protocols_design_for_an_unblinded_caller(unblinded):
    te = {row["ETCD"]: row for row in _rows(unblinded, "te")}
    assert list(te) == ["SCRN", "PREP", "FU", "MDMA", "PBO"]
    assert {code: te[code]["TEDUR"] for code in te} == {
        "SCRN": "P3D",  # day 0 to PREP1 on day 3
        "PREP": "P21D",  # to EXP1 on day 24
        "MDMA": "P102D",  # to the CAPS-5 visit on day 126
        "PBO": "P102D",
        "FU": "P56D",  # to the safety follow-up on day 182
    }
    assert te["MDMA"]["ELEMENT"] == "MDMA-assisted therapy"
    assert te["PBO"]["TESTRL"] == "First dose of study treatment, at Experimental session 1 (EXP1)"
    ta = _rows(unblinded, "ta")
    assert [(r["ARMCD"], r["TAETORD"], r["ETCD"]) for r in ta] == [
        *(("MDMA", n, code) for n, code in enumerate(["SCRN", "PREP", "MDMA", "FU"], 1)),
        *(("PBO", n, code) for n, code in enumerate(["SCRN", "PREP", "PBO", "FU"], 1)),
    ]
    branches = {(r["ARMCD"], r["ETCD"]): r["TABRANCH"] for r in ta if r["TABRANCH"]}
    assert branches == {
        ("MDMA", "PREP"): "Randomised to MDMA-assisted therapy",
        ("PBO", "PREP"): "Randomised to Placebo with therapy",
    }


def test_a_blinded_caller_sees_one_masked_arm_and_no_arm_anywhere(sponsor, two_sites):
    ta = _rows(sponsor, "ta")
    assert [(r["ARMCD"], r["ARM"], r["TAETORD"], r["ETCD"]) for r in ta] == [
        (MASKED, MASKED, 1, "SCRN"),
        (MASKED, MASKED, 2, "PREP"),
        (MASKED, MASKED, 3, MASKED),
        (MASKED, MASKED, 4, "FU"),
    ]
    assert ta[1]["TABRANCH"] == MASKED
    te = _rows(sponsor, "te")
    assert [row["ETCD"] for row in te] == ["SCRN", "PREP", "FU", MASKED]
    se = _rows(sponsor, "se")
    assert {row["ETCD"] for row in se if row["TAETORD"] == 3} == {MASKED}
    arms = {two_sites.a.participant.arm_code, two_sites.b.participant.arm_code}
    for domain in ("dm", "se", "ta", "te", "sv", "tv"):
        for file_format in ("csv", "json", "ndjson", "xpt"):
            response = sponsor.get(f"{API}/sdtm/{domain}.{file_format}", params={"study": "MAPP-T"})
            for word in (*arms, *ARM_LABELS):
                assert word.encode() not in response.content, (domain, file_format, word)


def test_tv_lists_the_protocols_visits_with_the_numbers_the_participants_visits_have(
    sponsor, two_sites
):
    tv = _rows(sponsor, "tv")
    visits = two_sites.a.visits
    assert [(row["VISITNUM"], row["VISIT"]) for row in tv] == [
        (float(visit.sequence), visit.name)
        for visit in sorted(visits.values(), key=lambda v: v.sequence)
    ]
    exp1 = next(row for row in tv if row["VISIT"] == "Experimental session 1")
    assert exp1["TVSTRL"] == "Day 24 after enrolment (window 3 days before to 7 days after)"
    assert exp1["TVENRL"] == "480 minutes after the start of the visit"
    assert {row["ARMCD"] for row in tv} == {""}  # the same visits in both arms


def test_ts_summarises_the_protocol_and_says_what_it_does_not_hold(sponsor, two_sites):
    ts = {row["TSPARMCD"]: row for row in _rows(sponsor, "ts")}
    values = {code: row["TSVAL"] for code, row in ts.items()}
    assert values["TITLE"].startswith("MDMA-assisted therapy vs placebo with therapy for PTSD")
    assert (values["TBLIND"], values["TCNTRL"], values["RANDOM"]) == (
        "DOUBLE BLIND",
        "PLACEBO",
        "Y",
    )
    assert (values["PROTID"], values["PROTVER"]) == ("mdma-ptsd-phase3", "1.4")
    assert (values["ROUTE"], values["NARMS"], values["ACTSUB"]) == ("ORAL", "2", "2")
    assert (values["SDTIGVER"], values["SDTMVER"]) == ("3.4", "2.0")
    assert ts["TBLIND"]["TSVALCD"] == "C15228" and ts["TBLIND"]["TSVCDREF"] == "CDISC CT"
    assert all(row["TSVALNF"] == "" for code, row in ts.items() if row["TSVAL"])


def test_ts_gives_the_trial_facts_of_the_protocols_trial_section(sponsor, two_sites):
    ts = {row["TSPARMCD"]: row for row in _rows(sponsor, "ts")}
    facts = {
        code: (ts[code]["TSVAL"], ts[code]["TSVALNF"], ts[code]["TSVALCD"], ts[code]["TSVCDREF"])
        for code in ("INDIC", "TPHASE", "SPONSOR", "PLANSUB")
    }
    assert facts == {
        "INDIC": ("Posttraumatic stress disorder", "", "47505003", "SNOMED"),
        "TPHASE": ("PHASE III TRIAL", "", "C15602", "CDISC CT"),
        "SPONSOR": ("Vigil demo sponsor", "", "", ""),
        "PLANSUB": ("100", "", "", ""),
    }
    assert ts["TPHASE"]["TSPARM"] == "Trial Phase Classification"


def _without_trial_section(text: str) -> str:
    """The MDMA protocol as a version written before the trial section existed."""
    start = text.index("\ntrial:\n") + 1
    end = text.index("\n\n", start) + 2
    return text[:start] + text[end:]


def test_a_protocol_without_a_trial_section_exports_ts_and_names_the_gaps(
    export_api, client_as, db, tmp_path
):
    older = tmp_path / "mdma-no-trial.yaml"
    older.write_text(
        _without_trial_section(MDMA_FILE.read_text()).replace(
            "id: mdma-ptsd-phase3", "id: mdma-ptsd-no-trial", 1
        )
    )
    study = make_study(db, older, code="MAPP-OLD")
    assert load_protocol_file(older).protocol.trial is None

    ts = {row["TSPARMCD"]: row for row in _rows(client_as(Role.SPONSOR), "ts", "MAPP-OLD")}
    for code in ("INDIC", "TPHASE", "SPONSOR", "PLANSUB"):
        assert (ts[code]["TSVAL"], ts[code]["TSVALNF"], ts[code]["TSVALCD"]) == ("", "NI", "")
    assert ts["TITLE"]["TSVAL"].startswith("MDMA-assisted therapy")

    manifest = write_package(lambda: nullcontext(db), study, tmp_path / "package")
    gaps = manifest["conformance_gaps"]["trial_summary_parameters_not_in_protocol"]
    assert gaps == ["INDIC", "TPHASE", "SPONSOR", "PLANSUB"]


def test_the_gap_lists_only_the_trial_facts_a_protocol_leaves_out(export_api, db, tmp_path):
    text = MDMA_FILE.read_text()
    sponsor_and_size = text[
        text.index("  sponsor:\n") : text.index("\n\n", text.index("  sponsor:"))
    ]
    partial = tmp_path / "mdma-partial-trial.yaml"
    partial.write_text(
        text.replace(sponsor_and_size + "\n", "", 1).replace(
            "id: mdma-ptsd-phase3", "id: mdma-ptsd-partial", 1
        )
    )
    trial = load_protocol_file(partial).protocol.trial
    assert trial is not None and trial.sponsor is None and trial.phase is not None
    study = make_study(db, partial, code="MAPP-PART")
    manifest = write_package(lambda: nullcontext(db), study, tmp_path / "package")
    gaps = manifest["conformance_gaps"]["trial_summary_parameters_not_in_protocol"]
    assert gaps == ["SPONSOR", "PLANSUB"]


# --- the subjects' visits and elements ----------------------------------------------------------


def test_sv_rows_are_the_visits_attended_and_trace_to_their_records(sponsor, two_sites, db):
    a = two_sites.a
    _attend(db, a.visits, {"SCREEN": date(2026, 1, 5), "PREP1": date(2026, 1, 8)})
    participants.record_outcome(
        db, a.visits["PREP2"], VisitOutcome(status="missed", reason="Participant unwell")
    )
    rows = _rows(sponsor, "sv")
    subject = f"MAPP-T-{a.participant.subject_id}"
    mine = [row for row in rows if row["USUBJID"] == subject]
    assert [(row["VISIT"], row["SVSTDTC"], row["SVENDTC"]) for row in mine] == [
        ("Screening and enrolment", "2026-01-05", "2026-01-05"),
        ("Preparatory session 1", "2026-01-08", "2026-01-08"),
        ("Experimental session 1", "2026-02-02T08:00:00", ""),  # the session goes on
    ]
    assert [row["EPOCH"] for row in mine] == ["SCREENING", "TREATMENT", "TREATMENT"]
    missed = a.visits["PREP2"].sequence
    assert missed not in {row["VISITNUM"] for row in mine}
    people = {f"MAPP-T-{x.participant.subject_id}": x.participant for x in (a, two_sites.b)}
    for row in rows:  # USUBJID and VISITNUM name one stored visit
        (visit,) = db.scalars(
            select(Visit).where(
                Visit.participant_id == people[row["USUBJID"]].id,
                Visit.sequence == row["VISITNUM"],
            )
        ).all()
        assert visit.name == row["VISIT"]
        assert visit.status == "completed" or visit.code == "EXP1"  # its session has started


def test_se_follows_each_participant_through_the_elements_they_entered(
    sponsor, unblinded, two_sites, db
):
    a, b = two_sites.a, two_sites.b
    _attend(db, a.visits, {"SCREEN": date(2026, 1, 5), "PREP1": date(2026, 1, 8)})
    rows = _rows(sponsor, "se")
    by_subject = {
        subject: [r for r in rows if r["USUBJID"] == f"MAPP-T-{subject}"]
        for subject in (a.participant.subject_id, b.participant.subject_id)
    }
    first = by_subject[a.participant.subject_id]
    assert [(r["SESEQ"], r["ETCD"], r["EPOCH"], r["SESTDTC"], r["SEENDTC"]) for r in first] == [
        (1, "SCRN", "SCREENING", "2026-01-02", "2026-01-08"),  # from consent
        (2, "PREP", "TREATMENT", "2026-01-08", "2026-02-02T08:30:00"),  # to the first dose
        (3, MASKED, "TREATMENT", "2026-02-02T08:30:00", ""),  # still in it
    ]
    # S02's participant attended no preparatory session: screening runs to the first dose
    second = by_subject[b.participant.subject_id]
    assert [(r["SESEQ"], r["TAETORD"], r["ETCD"], r["SEENDTC"]) for r in second] == [
        (1, 1, "SCRN", "2026-02-02T08:30:00"),
        (3, 3, MASKED, ""),
    ]
    shown = {r["USUBJID"]: r for r in _rows(unblinded, "se") if r["TAETORD"] == 3}
    treated = shown[f"MAPP-T-{a.participant.subject_id}"]
    assert treated["ETCD"] == a.participant.arm_code
    assert treated["ELEMENT"] in ARM_LABELS


def test_a_withdrawn_participant_without_an_arm_ends_with_their_last_visit(sponsor, two_sites, db):
    participant = make_participant(db, two_sites.a.site, "01-002", stage="enrolled")
    visits = {visit.code: visit for visit in participants.visits_of(db, participant)}
    _attend(db, visits, {"SCREEN": date(2026, 1, 5), "PREP1": date(2026, 1, 9)})
    participants.withdraw(
        db, participant, Withdrawal(reason_code=WithdrawalReason.PARTICIPANT_DECISION)
    )
    rows = [r for r in _rows(sponsor, "se") if r["USUBJID"] == "MAPP-T-01-002"]
    assert [(r["ETCD"], r["SESTDTC"], r["SEENDTC"]) for r in rows] == [
        ("SCRN", "2026-01-02", "2026-01-09"),
        ("PREP", "2026-01-09", "2026-01-09"),  # withdrawn: the element closes with its last visit
    ]


# --- define.xml ---------------------------------------------------------------------------------


def test_define_xml_is_valid_define_2_1_with_every_dataset_and_variable_in_order(
    sponsor, define_schema
):
    response = sponsor.get(DEFINE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    define_schema.validate(response.content.decode())
    root = ET.fromstring(response.content)
    mdv = root.find(f"{ODM}Study/{ODM}MetaDataVersion")
    assert mdv is not None and mdv.get(f"{DEF}DefineVersion") == "2.1.0"
    (standard,) = mdv.iter(f"{DEF}Standard")
    assert (standard.get("Name"), standard.get("Version")) == ("SDTMIG", "3.4")
    items = {item.get("OID"): item for item in mdv.iter(f"{ODM}ItemDef")}
    codelists = {c.get("OID") for c in mdv.iter(f"{ODM}CodeList")}
    groups = list(mdv.iter(f"{ODM}ItemGroupDef"))
    assert [group.get("Name") for group in groups] == list(DATASETS)
    dtc = 0
    for group, dataset in zip(groups, DATASETS.values(), strict=True):
        refs = list(group.iter(f"{ODM}ItemRef"))
        assert [int(ref.get("OrderNumber")) for ref in refs] == list(range(1, len(refs) + 1))
        for ref, variable in zip(refs, dataset.variables, strict=True):
            item = items[ref.get("ItemOID")]
            assert item.get("Name") == variable.name
            assert item.findtext(f"{ODM}Description/{ODM}TranslatedText") == variable.label
            assert ref.get("Mandatory") == ("Yes" if variable.core.value == "Req" else "No")
            if variable.data_type.value == "string":
                assert (item.get("DataType"), item.get("Length")) == ("text", str(variable.length))
            if variable.data_type.value in ("datetime", "date"):
                assert item.get(f"{DEF}CommentOID") == "COM.DTC"
                dtc += 1
            for codelist in item.iter(f"{ODM}CodeListRef"):
                assert codelist.get("CodeListOID") in codelists
    assert dtc >= 10
    (comment,) = mdv.iter(f"{DEF}CommentDef")
    convention = comment.findtext(f"{ODM}Description/{ODM}TranslatedText")
    assert "local clock time" in convention and "without a UTC offset" in convention


def test_the_schema_check_catches_a_define_xml_that_breaks_the_standard(sponsor, define_schema):
    root = ET.fromstring(sponsor.get(DEFINE).content)
    group = next(root.iter(f"{ODM}ItemGroupDef"))
    del group.attrib[f"{DEF}Structure"]  # required by Define-XML 2.1
    assert not define_schema.is_valid(ET.tostring(root, encoding="unicode"))


def test_define_xml_is_the_sponsors_and_audited(export_api, two_sites, client_as, db):
    sponsor = client_as(Role.SPONSOR)
    assert sponsor.get(f"{API}/studies/NOPE/sdtm/define.xml").status_code == 404
    assert sponsor.get(DEFINE).status_code == 200
    (record,) = db.scalars(select(AuditRecord).where(AuditRecord.action == "export_sdtm"))
    assert (record.after["dataset"], record.after["format"]) == ("define.xml", "xml")
    for role in (Role.COORDINATOR, Role.CLINICIAN):
        assert client_as(role, [two_sites.a.site]).get(DEFINE).status_code == 403, role


def test_the_packages_define_xml_is_valid(db, two_sites, tmp_path, define_schema):
    study = record_package_export(db, "MAPP-T")
    manifest = write_package(lambda: nullcontext(db), study, tmp_path)
    assert {key: value for key, value in manifest["files"][-1].items() if key != "sha256"} == {
        "file": "define.xml",
        "rows": None,
    }
    define_schema.validate(str(tmp_path / "define.xml"))


MDMA = load_protocol_file(PROTOCOLS / "mdma-ptsd-phase3.yaml").protocol


@given(keep=st.lists(st.booleans(), min_size=len(MDMA.visits), max_size=len(MDMA.visits)))
def test_any_subset_of_visits_gives_a_chained_design_over_their_days(keep):
    visits = [v for v, kept in zip(MDMA.visits, keep, strict=True) if kept or v.code == "EXP1"]
    design = design_of(MDMA.model_copy(update={"visits": visits}))
    kinds = {visit.kind for visit in visits}
    for arm in design.arms:
        assert {kind for e in arm.elements for kind in e.kinds} >= kinds
        assert [e.by_arm for e in arm.elements].count(True) == 1
        assert sum(int(e.duration[1:-1] or 0) for e in arm.elements) == (
            visits[-1].day - visits[0].day
        )
        for element, following in zip(arm.elements, arm.elements[1:], strict=False):
            assert element.end_rule == following.start_rule
