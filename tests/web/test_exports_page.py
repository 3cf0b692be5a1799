"""The exports page: each role sees the downloads it may pull, as links to the API's export
routes, and only the sessions of its own sites."""

import re

from fastapi.testclient import TestClient

from app.permissions import Role

LINK = re.compile(r'href="(/api/v1/[^"]+)"')


def exports_page(web: TestClient) -> str:
    page = web.get("/exports")
    assert page.status_code == 200, page.text
    return page.text


def test_the_sponsor_sees_every_dataset_define_xml_fhir_and_every_sites_reports(
    web, person, two_sites
):
    person(Role.SPONSOR)
    text = exports_page(web)
    links = LINK.findall(text)
    assert "/api/v1/exports/sdtm/vs.xpt?study=MAPP-T" in links
    assert "/api/v1/exports/studies/MAPP-T/sdtm/define.xml" in links
    assert "/api/v1/exports/fhir/Observation.ndjson?study=MAPP-T" in links
    for site in (two_sites.a, two_sites.b):
        assert f"/api/v1/exports/sessions/{site.dosing_session.id}/report.pdf" in links
    assert "vigil export --study MAPP-T" in text


def test_every_link_on_the_page_downloads_for_the_sponsor(web, person, two_sites):
    person(Role.SPONSOR)
    links = LINK.findall(exports_page(web))
    for link in links[:3] + [link for link in links if "report.pdf" in link][:1]:
        response = web.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, f"{link}: {response.status_code} {response.text[:200]}"


def test_a_coordinator_sees_reports_of_their_site_only_and_no_sponsor_export(
    web, person, two_sites
):
    person(Role.COORDINATOR, two_sites.a.site)
    text = exports_page(web)
    assert f"/sessions/{two_sites.a.dosing_session.id}/report.pdf" in text
    assert f"/sessions/{two_sites.b.dosing_session.id}/report.pdf" not in text
    assert "/exports/sdtm/" not in text and "/exports/fhir/" not in text
    assert "/audit-records/export" not in text
    assert 'href="/exports"' in text  # the nav offers the page


def test_the_medical_monitor_also_gets_the_audit_trail(web, person, two_sites):
    person(Role.MEDICAL_MONITOR)
    text = exports_page(web)
    assert 'href="/api/v1/audit-records/export"' in text
    assert "/exports/sdtm/" not in text


def test_a_therapist_may_not_open_the_page_and_the_nav_hides_it(web, person, two_sites):
    person(Role.THERAPIST, two_sites.a.site)
    assert 'href="/exports"' not in web.get("/").text
    refused = web.get("/exports")
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
