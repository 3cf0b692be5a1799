"""Signing in and out of the web client: the API's accounts and lockout, the form token on
every post, the idle sign-out, and pages (not problem+json) for what goes wrong."""

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.deps import SESSION_COOKIE
from app.models import AccessToken, AuditRecord, User
from app.permissions import Role
from app.users import service as users
from tests.conftest import TEST_PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def browser(anonymous_client: TestClient) -> TestClient:
    anonymous_client.follow_redirects = False
    return anonymous_client


@pytest.fixture
def nurse(db: Session, two_sites) -> User:
    return users.create_user(
        db,
        username="lena",
        display_name="Dr. Lena Park",
        role=Role.CLINICIAN,
        password=TEST_PASSWORD,
        site_ids=[two_sites.a.site.id],
    )


def form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = TOKEN.search(page.text)
    assert found, f"no form token on {path}"
    return found.group(1)


def sign_in(client: TestClient, username: str = "lena", password: str = TEST_PASSWORD):
    token = form_token(client, "/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def test_a_signed_out_visitor_is_sent_to_the_sign_in_page_and_back(browser, nurse):
    first = browser.get("/?site=S01")
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2F%3Fsite%3DS01"
    page = browser.get(first.headers["location"])
    assert 'name="next" value="/?site=S01"' in page.text
    token = TOKEN.search(page.text).group(1)
    signed_in = browser.post(
        "/login",
        data={
            "username": "lena",
            "password": TEST_PASSWORD,
            "csrf_token": token,
            "next": "/?site=S01",
        },
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/?site=S01"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_the_header_names_the_user_role_and_sites(browser, nurse, two_sites):
    sign_in(browser)
    page = browser.get("/")
    assert page.status_code == 200
    assert "Dr. Lena Park" in page.text
    assert "clinician" in page.text
    assert two_sites.a.site.code in page.text
    assert ">Sign out<" in page.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_after_sign_in_only_a_page_of_vigil_is_opened(browser, nurse, target):
    token = form_token(browser, "/login")
    signed_in = browser.post(
        "/login",
        data={"username": "lena", "password": TEST_PASSWORD, "csrf_token": token, "next": target},
    )
    assert signed_in.headers["location"] == "/"


def test_a_wrong_password_is_refused_on_the_page_and_counts_toward_lockout(browser, nurse, db):
    refused = sign_in(browser, password="not it")
    assert refused.status_code == 401
    assert "username or password is wrong" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    db.expire_all()
    assert db.get(User, nurse.id).failed_login_count == 1


def test_an_account_locked_after_failures_is_told_so(browser, nurse):
    for _ in range(10):
        last = sign_in(browser, password="not it")
        if last.status_code == 429:
            break
    assert last.status_code == 429
    assert "locked until" in last.text
    assert sign_in(browser).status_code == 429  # even the right password, while locked


def test_a_form_post_without_its_token_is_refused(browser, nurse, db):
    no_token = browser.post("/login", data={"username": "lena", "password": TEST_PASSWORD})
    assert no_token.status_code == 403
    assert "security token" in no_token.text
    assert sign_in(browser).status_code == 303
    for sent in ({}, {"csrf_token": "forged"}):
        refused = browser.post("/logout", data=sent)
        assert refused.status_code == 403
    assert browser.get("/").status_code == 200  # still signed in


def test_the_form_token_belongs_to_one_sign_in(browser, nurse):
    sign_in(browser)
    first = form_token(browser, "/")
    browser.cookies.clear()
    sign_in(browser)
    assert form_token(browser, "/") != first
    assert browser.post("/logout", data={"csrf_token": first}).status_code == 403


def test_sign_out_revokes_the_sign_in(browser, nurse, db):
    sign_in(browser)
    cookie = browser.cookies[SESSION_COOKIE]
    out = browser.post("/logout", data={"csrf_token": form_token(browser, "/")})
    assert out.status_code == 303
    assert out.headers["location"] == "/login?reason=signed-out"
    browser.cookies.set(SESSION_COOKIE, cookie)  # a copy of the cookie kept elsewhere
    assert browser.get("/").headers["location"].startswith("/login")
    assert browser.get("/api/v1/auth/me").status_code == 401


def test_a_sign_in_unused_past_the_idle_time_ends(browser, nurse, db, monkeypatch):
    sign_in(browser)
    token = db.scalars(select(AccessToken).where(AccessToken.user_id == nurse.id)).one()
    token.last_seen_at = token.created_at - timedelta(minutes=16)
    token.created_at = token.last_seen_at
    db.commit()
    answer = browser.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?reason=idle"
    db.expire_all()
    assert db.get(AccessToken, token.id).revoked_at is not None
    assert db.scalars(
        select(AuditRecord).where(
            AuditRecord.entity_id == str(token.id), AuditRecord.action == "logout"
        )
    ).first()
    notice = browser.get("/login?reason=idle")
    assert "signed out after a time without use" in notice.text


def test_an_unknown_page_is_a_page_and_an_unknown_api_path_is_a_problem(browser, nurse):
    sign_in(browser)
    page = browser.get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text
    api = browser.get("/api/v1/no-such-path")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_pages_are_not_kept_by_the_browser_and_allow_no_inline_script(browser, nurse):
    sign_in(browser)
    page = browser.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert "<script>" not in page.text


def test_a_method_a_page_does_not_take_is_a_page_naming_those_it_does(browser):
    answer = browser.put("/login")
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert set(answer.headers["allow"].split(", ")) == {"GET", "POST"}
