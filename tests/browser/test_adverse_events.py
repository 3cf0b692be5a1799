"""Adverse events and notes in a real browser: a clinician records an SAE for the demo's
participant in session and sees its reporting clock; a therapist writes a note and signs it,
a wrong password first (refused, said on the page), then the right one (signed). Every page
passes the accessibility check and is photographed."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.demo.seed import DEMO_PASSWORD
from tests.browser.demo_api import live_session, token_of
from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser

BOULDER = ZoneInfo("America/Denver")  # the demo's S01


def participant_in_session(base_url: str) -> str:
    return str(live_session(base_url, token_of(base_url, "therapist1"))["participant_id"])


def minutes_ago(minutes: int) -> str:
    return (datetime.now(BOULDER) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def test_an_sae_is_recorded_and_its_reporting_clock_shown(page, base_url, console_errors):
    console_errors.allow("status of 422")  # the refused first try
    participant_id = participant_in_session(base_url)
    page.clock.install()  # the page's own clock, moved on below to pass the SAE's deadline
    sign_in(page, base_url, "clinician1")
    page.goto(f"{base_url}/participants/{participant_id}/adverse-events/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("New adverse event")
    check_accessibility(page)

    page.get_by_role("button", name="Record adverse event").click()  # nothing filled in
    expect(page.get_by_role("alert")).to_contain_text("not recorded")
    expect(page.locator("#verbatim_term-error")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "adverse-event-form")

    page.get_by_label("Term, as reported").fill("Chest pain with raised blood pressure")
    page.get_by_label("Onset").fill(minutes_ago(40))
    page.locator("#severity").select_option("severe")
    page.locator("#ctcae_grade").select_option("3")
    page.locator("#relatedness").select_option("possible")
    page.locator("#expectedness").select_option("unexpected")
    page.locator("#action_taken").select_option("dose_withheld")
    page.locator("#outcome").select_option("recovering")
    page.get_by_label("Requires inpatient hospitalisation or prolongs it").check()
    page.get_by_role("button", name="Record adverse event").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Chest pain")
    clock = page.get_by_role("region", name=re.compile("reporting clock"))
    expect(clock).to_contain_text("left to report to the sponsor")
    expect(clock).to_contain_text(re.compile(r"due \d+ \w+ \d{4} \d\d:\d\d M[SD]T"))
    expect(page.get_by_text("requires inpatient hospitalisation")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "adverse-event")

    page.get_by_label("approval").check()
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Signed.")).to_be_visible()
    expect(page.locator(".signatures")).to_contain_text("Dr. Lena Park, approval")

    # the page left open past the 24 h deadline (someone at it, so no idle sign-out)
    page.clock.set_system_time(datetime.now(BOULDER) + timedelta(hours=25))
    page.keyboard.press("Shift")
    page.clock.run_for(30_000)
    expect(page.locator("#sae-badge")).to_have_text("overdue")
    expect(page.locator("#sae-text")).to_contain_text(re.compile(r"^Overdue by (1 h )?\d+ min"))


def test_a_note_is_signed_after_a_wrong_password_is_refused(page, base_url, console_errors):
    console_errors.allow("status of 401")  # the refused signing answers 401, as the API does
    participant_id = participant_in_session(base_url)
    sign_in(page, base_url, "therapist1")
    page.goto(f"{base_url}/participants/{participant_id}/notes/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("New note")
    check_accessibility(page)
    screenshot(page, "note-form")
    page.get_by_label("Note").fill("Second hour: grounding once, then calm; spoke of the fire.")
    page.get_by_role("button", name="Save note").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Note on 01-005")
    expect(page.get_by_label("authorship")).to_be_checked()
    expect(page.get_by_label("Username")).to_have_value("therapist1")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("the password is wrong; you did not sign")
    expect(page.get_by_text("Not signed yet.")).to_be_visible()

    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Signed.")).to_be_visible()
    expect(page.locator(".signatures")).to_contain_text("Tess Ortega, authorship")
    check_accessibility(page)
    screenshot(page, "note")
