"""The web client in a real browser: sign in through the form, see who you are, the overview,
sign out; a wrong password is refused on the page; a form without its token is refused; the
pages pass the accessibility check and are photographed at desktop and tablet widths."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.harness import check_accessibility, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_sign_in_shows_the_overview_of_the_users_sites(page, base_url):
    sign_in(page, base_url, "clinician1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    header = page.get_by_role("banner")
    expect(header).to_contain_text("S01")
    expect(page.get_by_text("Dosing sessions in progress")).to_be_visible()
    check_accessibility(page)
    screenshot(page, "overview")


def test_the_sign_in_page_is_accessible_and_refuses_a_wrong_password(
    page, base_url, console_errors
):
    console_errors.allow("status of 401")  # the refusal is a 401 page, as the API's is
    page.goto(f"{base_url}/login")
    check_accessibility(page)
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill("therapist1")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("username or password is wrong")
    expect(page).to_have_url(re.compile(r"/login"))


def test_sign_out_ends_the_sign_in(page, base_url):
    sign_in(page, base_url, "coordinator")
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out")
    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_form_post_without_its_token_is_refused(page, base_url, console_errors):
    console_errors.allow("status of 403")
    sign_in(page, base_url, "therapist1")
    page.evaluate(
        "document.querySelector('form[action=\"/logout\"] input[name=csrf_token]').remove()"
    )
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_text("security token")).to_be_visible()
    page.goto(f"{base_url}/")  # still signed in: the refused post changed nothing
    expect(page.get_by_role("banner")).to_contain_text("Tess Ortega")
