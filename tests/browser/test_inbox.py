"""The alerts inbox in a real browser: as clinician1 it opens live on the alert stream; a
reading posted through the API for the demo's session in progress opens an alert that appears
without a reload, counted in the title and on the favicon; it is acknowledged in place."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.demo_api import live_session, post_reading, resolve_alerts_of_rule, token_of
from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser

LOW_SPO2 = [
    {"code": "SYSBP", "value": 128, "unit": "mmHg"},
    {"code": "DIABP", "value": 82, "unit": "mmHg"},
    {"code": "PULSE", "value": 88, "unit": "beats/min"},
    {"code": "OXYSAT", "value": 88, "unit": "%"},
]


def test_a_new_alert_appears_live_and_is_acknowledged_in_place(page, base_url):
    resolve_alerts_of_rule(base_url, token_of(base_url, "clinician1"), "hypoxia-news2-3")
    sign_in(page, base_url, "clinician1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    expect(page.locator("#live-state")).to_have_text("live")
    row = page.locator("#alert-rows tr", has_text="hypoxia-news2-3")
    expect(row).to_have_count(0)

    token = token_of(base_url, "therapist1")
    dosing_session = live_session(base_url, token)
    post_reading(base_url, token, dosing_session["id"], LOW_SPO2)

    expect(row).to_be_visible(timeout=10_000)  # no reload: the stream brought it
    expect(row).to_contain_text("01-005")
    expect(row).to_contain_text("OXYSAT 88")
    expect(row).to_contain_text(re.compile(r"M[SD]T"))  # raised in Boulder's clock
    expect(page).to_have_title(re.compile(r"^\(\d+\) Alerts"))
    title, shown = page.evaluate(
        "() => [document.title, document.querySelectorAll('#alert-rows tr[data-status=open]')"
        ".length]"
    )
    counted = re.match(r"^\((\d+)\)", title)
    assert counted and int(counted.group(1)) == shown  # the open alerts, this one among them
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


FEVER = [
    {"code": "SYSBP", "value": 131, "unit": "mmHg"},
    {"code": "DIABP", "value": 84, "unit": "mmHg"},
    {"code": "PULSE", "value": 96, "unit": "beats/min"},
    {"code": "TEMP", "value": 39.6, "unit": "C"},
]


def test_the_inbox_says_it_is_reconnecting_and_catches_up_after(
    page, base_url, vigil_server, console_errors
):
    console_errors.allow(r"net::ERR_")  # the stream and its retries while the server is down
    resolve_alerts_of_rule(base_url, token_of(base_url, "clinician1"), "fever-grade-2")
    sign_in(page, base_url, "clinician1")
    page.goto(f"{base_url}/alerts")
    live = page.locator("#live-state")
    expect(live).to_have_text("live")
    token = token_of(base_url, "therapist1")
    dosing_session = live_session(base_url, token)
    vigil_server.kill()
    try:
        expect(live).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        expect(live).to_have_text("reconnecting…")
    finally:
        vigil_server.start()
    # posted at once: before the page is back on the stream, or after; either way it comes,
    # replayed from the Last-Event-ID the browser sends when it reconnects
    post_reading(base_url, token, dosing_session["id"], FEVER)
    expect(live).to_have_text("live", timeout=15_000)
    expect(page.locator("#alert-rows tr", has_text="fever-grade-2")).to_be_visible(timeout=15_000)
