"""Every page, reached as a person would reach it (by following the links from the overview), as
each blinded demo account: no page shows a randomisation arm, none logs a console error, and
each kind of page passes the accessibility check once."""

import re
from collections import Counter, deque
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.demo.seed import STUDY_CODE
from tests.browser.harness import ConsoleErrors, check_accessibility, sign_in

pytestmark = pytest.mark.browser

BLINDED = ("coordinator", "therapist1", "clinician1", "monitor", "sponsor")
PAGES_PER_USER = 30
PER_KIND = 3  # pages of one kind (one route) a user opens
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOT_PAGES = ("/api/", "/static/", "/docs", "/redoc", "/logout", "/healthz", "/readyz")


def arms_shown(text: str, study_name: str) -> list[str]:
    """The demo protocol's arm labels and codes in a page's text (the study's own name, which
    says what the trial is about, left aside)."""
    text = text.replace(study_name, "")
    found = re.findall(
        r"MDMA-assisted therapy|Placebo with therapy|\bPBO\b|\bplacebo\b", text, re.I
    )
    return sorted(set(found))


def test_the_detector_finds_an_arm():
    name = "Demo: MDMA-assisted therapy for PTSD (phase 3 design)"
    assert arms_shown(f"{name} · Arm: Placebo with therapy", name) == ["Placebo with therapy"]
    assert arms_shown(f"{name} · Arm: Blinded", name) == []


def kind_of(path: str) -> str:
    return UUID.sub("{id}", urlsplit(path).path)


def links_of(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    return [
        href.split("#")[0]
        for href in hrefs
        if href.startswith("/") and not href.startswith(NOT_PAGES) and href.split("#")[0]
    ]


def test_no_blinded_user_sees_an_arm_on_any_page_and_every_page_is_accessible(
    browser, base_url, vigil_server
):
    checked_kinds: set[str] = set()
    visited_kinds: dict[str, set[str]] = {}
    for username in BLINDED:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors = ConsoleErrors().watch(page)
        try:
            sign_in(page, base_url, username)
            study_name = page.locator("h2").first.inner_text().split(f" ({STUDY_CODE})")[0]
            queue, seen = deque(["/"]), {"/"}
            visited, queued_kinds = 0, Counter(["/"])
            while queue and visited < PAGES_PER_USER:
                path = queue.popleft()
                answer = page.goto(base_url + path)
                visited += 1
                kind = kind_of(path)
                assert answer is not None and answer.status < 400, f"{username}: {path}"
                shown = arms_shown(page.locator("body").inner_text(), study_name)
                assert not shown, f"{username} sees {shown} on {path}"
                visited_kinds.setdefault(kind, set()).add(username)
                if kind not in checked_kinds:
                    checked_kinds.add(kind)
                    check_accessibility(page)
                for link in links_of(page):
                    # a few pages of each kind per user: a new kind of page first
                    if link not in seen and queued_kinds[kind_of(link)] < PER_KIND:
                        seen.add(link)
                        queued_kinds[kind_of(link)] += 1
                        queue.append(link)
            errors.check()
        finally:
            context.close()
    assert "/" in visited_kinds and len(visited_kinds) >= 2, visited_kinds
