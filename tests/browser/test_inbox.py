"""The alerts inbox in a real browser: as clinician1 it opens live on the alert stream; a
reading posted through the API for the demo's session in progress opens an alert that appears
without a reload, counted in the title and on the favicon; it is acknowledged in place."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.demo_api import live_session, post_reading, token_of
from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser

LOW_SPO2 = [
    {"code": "SYSBP", "value": 128, "unit": "mmHg"},
    {"code": "DIABP", "value": 82, "unit": "mmHg"},
    {"code": "PULSE", "value": 88, "unit": "beats/min"},
    {"code": "OXYSAT", "value": 88, "unit": "%"},
]


def test_a_new_alert_appears_live_and_is_acknowledged_in_place(page, base_url):
    sign_in(page, base_url, "clinician1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    expect(page.locator("#live-state")).to_have_text("live")
    before = page.locator('#alert-rows tr[data-status="open"]').count()

    token = token_of(base_url, "therapist1")
    dosing_session = live_session(base_url, token)
    post_reading(base_url, token, dosing_session["id"], LOW_SPO2)

    row = page.locator("#alert-rows tr", has_text="hypoxia-news2-3")
    expect(row).to_be_visible(timeout=10_000)  # no reload: the stream brought it
    expect(row).to_contain_text("01-005")
    expect(row).to_contain_text("OXYSAT 88")
    expect(row).to_contain_text(re.compile(r"M[SD]T"))  # raised in Boulder's clock
    expect(page).to_have_title(re.compile(r"^\(\d+\) Alerts"))
    counted = re.match(r"^\((\d+)\)", page.title())
    assert counted and int(counted.group(1)) > before  # the open alerts, this one among them
    href = page.locator("link#favicon").get_attribute("href")
    assert href and href.startswith("data:image/png"), href
    assert page.locator("#alert-rows tr").first.get_attribute("data-rank") == "2"

    page.get_by_role("button", name="Sound on").click()
    expect(page.get_by_role("button", name="Sound on")).to_have_attribute("aria-pressed", "true")

    check_accessibility(page)
    screenshot(page, "alerts")

    row.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(row).to_have_attribute("data-status", "acknowledged")
    expect(row).to_contain_text("Dr. Lena Park")
    expect(row.get_by_role("button")).to_have_count(0)
    page.reload()  # it was stored, not only shown
    expect(page.locator("#alert-rows tr", has_text="hypoxia-news2-3")).to_contain_text(
        "acknowledged"
    )
