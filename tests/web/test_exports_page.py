"""The exports page: each role sees the downloads it may pull, as links to the API's export
routes, and only the sessions of its own sites."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD
from tests.web.test_signin import sign_in

LINK = re.compile(r'href="(/api/v1/[^"]+)"')


@pytest.fixture
def browser(anonymous_client: TestClient) -> TestClient:
    anonymous_client.follow_redirects = False
    return anonymous_client


def person(db: Session, username: str, role: Role, site_ids=()) -> str:
    users.create_user(
        db,
        username=username,
        display_name=username.title(),
        role=role,
        password=TEST_PASSWORD,
        site_ids=list(site_ids),
    )
    return username


def exports_page(browser: TestClient, username: str) -> str:
    assert sign_in(browser, username).status_code == 303
    page = browser.get("/exports")
    assert page.status_code == 200, page.text
    return page.text


def test_the_sponsor_sees_every_dataset_define_xml_fhir_and_every_sites_reports(
    browser, db, two_sites
):
    text = exports_page(browser, person(db, "grace", Role.SPONSOR))
    links = LINK.findall(text)
    assert "/api/v1/exports/sdtm/vs.xpt?study=MAPP-T" in links
    assert "/api/v1/exports/studies/MAPP-T/sdtm/define.xml" in links
    assert "/api/v1/exports/fhir/Observation.ndjson?study=MAPP-T" in links
    for site in (two_sites.a, two_sites.b):
        assert f"/api/v1/exports/sessions/{site.dosing_session.id}/report.pdf" in links
    assert "vigil export --study MAPP-T" in text


def test_every_link_on_the_page_downloads_for_the_sponsor(browser, db, two_sites):
    links = LINK.findall(exports_page(browser, person(db, "grace", Role.SPONSOR)))
    for link in links[:3] + [link for link in links if "report.pdf" in link][:1]:
        response = browser.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, f"{link}: {response.status_code} {response.text[:200]}"


def test_a_coordinator_sees_reports_of_their_site_only_and_no_sponsor_export(
    browser, db, two_sites
):
    text = exports_page(browser, person(db, "casey", Role.COORDINATOR, [two_sites.a.site.id]))
    assert f"/sessions/{two_sites.a.dosing_session.id}/report.pdf" in text
    assert f"/sessions/{two_sites.b.dosing_session.id}/report.pdf" not in text
    assert "/exports/sdtm/" not in text and "/exports/fhir/" not in text
    assert "/audit-records/export" not in text
    assert 'href="/exports"' in text  # the nav offers the page


def test_the_medical_monitor_also_gets_the_audit_trail(browser, db, two_sites):
    text = exports_page(browser, person(db, "ruth", Role.MEDICAL_MONITOR))
    assert 'href="/api/v1/audit-records/export"' in text
    assert "/exports/sdtm/" not in text


def test_a_therapist_may_not_open_the_page_and_the_nav_hides_it(browser, db, two_sites):
    username = person(db, "tess", Role.THERAPIST, [two_sites.a.site.id])
    assert sign_in(browser, username).status_code == 303
    assert 'href="/exports"' not in browser.get("/").text
    refused = browser.get("/exports")
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
