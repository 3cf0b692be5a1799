"""The participant pages in a real browser: the coordinator opens the list and a participant,
reschedules a visit with a reason and finds the change in the schedule and in the visit's
history; a coordinator of another site gets the not-found page; a blinded user never sees an
arm on the list, the participant's page or its history. Each page passes the accessibility
check and is photographed."""

import re
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from app.demo.seed import DEMO_PASSWORD
from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser

ARMS = re.compile(r"\b(MDMA|PBO)\b")
OTHER_SITE_COORDINATOR = "coordinator-s02"


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    """The API as the demo admin."""
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=10) as client:
        signed_in = client.post(
            "/auth/login", json={"username": "admin", "password": DEMO_PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        client.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        yield client


@pytest.fixture(scope="module")
def s02_coordinator(api: httpx.Client) -> str:
    """A coordinator of the Charleston site (S02) only, made through the API by the admin."""
    [study] = [s for s in api.get("/studies").json()["items"] if s["code"] == "DEMO-MAPP"]
    sites = api.get(f"/studies/{study['id']}/sites").json()["items"]
    [s02] = [site["id"] for site in sites if site["code"] == "S02"]
    made = api.post(
        "/users",
        json={
            "username": OTHER_SITE_COORDINATOR,
            "display_name": "Cora Charleston",
            "role": "coordinator",
            "password": DEMO_PASSWORD,
            "site_ids": [s02],
        },
    )
    assert made.status_code == 201, made.text
    return OTHER_SITE_COORDINATOR


def _open_participant(page, subject_id: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Participants").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")
    page.get_by_role("link", name=subject_id, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Participant {subject_id}")


def test_the_coordinator_reschedules_a_visit_and_finds_it_in_the_history(page, base_url):
    sign_in(page, base_url, "coordinator")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Participants").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participants")
    expect(page.get_by_role("link", name="01-004", exact=True)).to_be_visible()
    page.get_by_label("Site").select_option(label="S01 · Boulder clinic")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="02-001", exact=True)).to_have_count(0)
    assert not ARMS.search(page.inner_text("main"))
    check_accessibility(page)
    screenshot(page, "participants")

    page.get_by_role("link", name="01-004", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Participant 01-004")
    row = page.locator("#visit-CAPS5")
    row.locator("summary").click()
    new_date = row.get_by_label("New date")
    moved_to = date.fromisoformat(new_date.input_value()) + timedelta(days=3)
    new_date.fill(moved_to.isoformat())
    row.get_by_label("Reason").fill("Participant travelling that week")
    row.get_by_role("button", name="Reschedule CAPS5").click()
    expect(page.get_by_role("status")).to_have_text("The visit was rescheduled.")
    row = page.locator("#visit-CAPS5")
    expect(row).to_contain_text(f"{moved_to.day} {moved_to:%b %Y}")
    expect(row).to_contain_text("Participant travelling that week")
    assert not ARMS.search(page.inner_text("main"))
    check_accessibility(page)
    screenshot(page, "participant")

    row.get_by_role("link", name="History of visit CAPS5").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "History of visit CAPS5 of participant 01-004"
    )
    change = page.locator("li.change").filter(has_text="Participant travelling that week")
    expect(change).to_contain_text("coordinator (coordinator)")
    expect(change.get_by_role("row", name=re.compile("scheduled_on"))).to_contain_text(
        moved_to.isoformat()
    )
    expect(page.get_by_role("main")).to_contain_text("times in America/Denver")
    expect(change).to_contain_text(re.compile(r"\d{2}:\d{2} M[SD]T"))  # Mountain time
    check_accessibility(page)
    screenshot(page, "history")


def test_a_coordinator_of_another_site_gets_the_not_found_page(
    page, base_url, s02_coordinator, console_errors
):
    console_errors.allow("status of 404")
    sign_in(page, base_url, "coordinator")
    _open_participant(page, "01-004")
    participant_url = page.url
    history_url = f"{base_url}/history/participants/{participant_url.rsplit('/', 1)[1]}"
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    sign_in(page, base_url, s02_coordinator)
    for url in (participant_url, history_url):
        response = page.goto(url)
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(page.get_by_role("main")).not_to_contain_text("01-004")
    check_accessibility(page)


@pytest.mark.parametrize("username", ["therapist1", "coordinator"])
def test_a_blinded_user_never_sees_an_arm(page, base_url, username):
    sign_in(page, base_url, username)
    _open_participant(page, "01-005")  # randomised, in a dosing session now
    expect(page.get_by_text("arm blinded")).to_be_visible()
    assert not ARMS.search(page.inner_text("main"))
    page.get_by_role("link", name="History of participant 01-005").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("History of participant 01-005")
    main = page.inner_text("main")
    assert "BLINDED" in main and not ARMS.search(main)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Participants").click()
    assert not ARMS.search(page.inner_text("main"))


def test_a_reschedule_with_too_short_a_reason_is_refused_on_the_page(
    page, base_url, console_errors
):
    console_errors.allow("status of 422")
    sign_in(page, base_url, "coordinator")
    _open_participant(page, "01-003")
    row = page.locator("#visit-FU")
    row.locator("summary").click()
    planned = row.get_by_label("New date").input_value()
    row.get_by_label("Reason").fill("no ")  # three characters, two once trimmed
    row.get_by_role("button", name="Reschedule FU").click()
    row = page.locator("#visit-FU")
    expect(row.get_by_role("alert")).to_contain_text("Not done")
    reason = row.get_by_label("Reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(row.locator("#reschedule-FU-reason-error")).to_contain_text("at least 3 characters")
    expect(row.get_by_label("New date")).to_have_value(planned)
    check_accessibility(page)
