"""Session reports and the study summary through the API: the PDF has its pages and names the
subject, never an arm or a note's text; the PNG is the chart page at its size; another site's
session is as missing as one that does not exist; each report pulled is an audit event."""

import io

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from app.exports.reports.chart import PAGE_SIZE, PNG_DPI
from app.models import AuditRecord, Participant
from app.permissions import ALL_SITES_ROLES, Role

API = "/api/v1/exports"


def _pdf_text(response) -> tuple[int, str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def _report(client, reported, extension: str = "pdf"):
    return client.get(f"{API}/sessions/{reported.session.id}/report.{extension}")


def _arm_words(db, reported) -> list[str]:
    participant = db.get_one(Participant, reported.session.participant_id)
    assert participant.arm_code in {"MDMA", "PBO"}
    return [participant.arm_code, "MDMA-assisted", "Placebo", "BLINDED", "arm"]


@pytest.mark.parametrize("role", [Role.MEDICAL_MONITOR, Role.SPONSOR])
def test_the_pdf_has_two_pages_names_the_subject_and_no_arm(db, reported, client_as, role):
    pages, text = _pdf_text(_report(client_as(role), reported))
    assert pages == 2
    assert "01-001" in text and "MAPP-T" in text
    assert "hypertensive-crisis" in text  # the alert, in the chart's strip and the table
    for word in _arm_words(db, reported):
        assert word not in text
    assert reported.site.note.text[:20] not in text
    assert "rechecking BP" not in text  # nor the acknowledgement's free text


def test_the_pdf_lists_the_attestations_and_who_answered_the_alert(reported, client_as):
    _, text = _pdf_text(_report(client_as(Role.MEDICAL_MONITOR), reported))
    assert "lead therapist present" in text and "Therapist S01" in text
    assert "Co Therapist S01" in text
    assert "Clinician S01" in text  # acknowledged and resolved by
    assert "return to baseline" in text and "not attested" in text


def test_the_png_is_the_chart_page_at_its_size(reported, client_as):
    response = _report(client_as(Role.SPONSOR), reported, "png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.verify()
    assert image.size == (round(PAGE_SIZE[0] * PNG_DPI), round(PAGE_SIZE[1] * PNG_DPI))


def test_a_site_clinician_reads_their_sites_report_and_not_another_sites(reported, client_as):
    clinician = client_as(Role.CLINICIAN, [reported.site.site])
    assert _report(clinician, reported).status_code == 200
    other = reported.trial.b.dosing_session.id
    response = clinician.get(f"{API}/sessions/{other}/report.pdf")
    assert response.status_code == 404
    assert "S02" not in response.text and "02-001" not in response.text


def test_a_coordinator_sees_no_clinical_alert_in_the_report(reported, client_as):
    coordinator = client_as(Role.COORDINATOR, [reported.site.site])
    _, text = _pdf_text(_report(coordinator, reported))
    assert "01-001" in text
    assert "hypertensive-crisis" not in text and "no alerts" in text


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.PHARMACIST, Role.ADMIN, Role.DEVICE])
def test_other_roles_may_not_read_reports(reported, client_as, role):
    sites = [] if role in ALL_SITES_ROLES else [reported.site.site]
    response = _report(client_as(role, sites), reported)
    assert response.status_code == 403


def test_each_report_pulled_is_an_audit_event_of_the_caller(db, reported, client_as):
    monitor = client_as(Role.MEDICAL_MONITOR, username="monitor-ruth")
    assert _report(monitor, reported, "png").status_code == 200
    (record,) = db.scalars(
        select(AuditRecord).where(
            AuditRecord.action == "export_report",
            AuditRecord.entity_id == str(reported.session.id),
        )
    ).all()
    assert record.actor == "medical_monitor:monitor-ruth"
    assert record.after == {
        "report": "session",
        "format": "png",
        "study": "MAPP-T",
        "subject_id": "01-001",
    }


def test_the_study_summary_is_two_pages_of_the_callers_sites(db, reported, client_as):
    sponsor = client_as(Role.SPONSOR, username="sponsor-grace")
    pages, text = _pdf_text(sponsor.get(f"{API}/studies/MAPP-T/summary.pdf"))
    assert pages == 2
    assert "sites S01, S02" in text and "Serious adverse events" in text
    for word in _arm_words(db, reported):
        assert word not in text
    clinician = client_as(Role.CLINICIAN, [reported.site.site])
    _, text = _pdf_text(clinician.get(f"{API}/studies/MAPP-T/summary.pdf"))
    assert "sites S01;" in text and "S02" not in text
    audited = db.scalars(
        select(AuditRecord)
        .where(AuditRecord.action == "export_report")
        .order_by(AuditRecord.sequence)
    ).all()
    assert [(r.actor.split(":")[0], r.after["sites"]) for r in audited] == [
        ("sponsor", ["S01", "S02"]),
        ("clinician", ["S01"]),
    ]


def test_an_unknown_study_is_not_found(reported, client_as):
    response = client_as(Role.SPONSOR).get(f"{API}/studies/NOPE/summary.pdf")
    assert response.status_code == 404
