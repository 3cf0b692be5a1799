"""The exports page in a real browser: the sponsor's downloads, reachable from the nav, and the
page passes the accessibility check at both widths."""

import pytest
from playwright.sync_api import expect

from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_the_sponsor_finds_the_exports_from_the_nav(page, base_url):
    sign_in(page, base_url, "sponsor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Exports")
    expect(page.get_by_role("link", name="VS as xpt", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Define-XML 2.1")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "exports")


def test_a_session_report_opens_from_the_page(page, base_url):
    sign_in(page, base_url, "clinician1")
    page.goto(f"{base_url}/exports")
    link = page.get_by_role("link", name="(PDF)").first
    response = page.request.get(base_url + link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
