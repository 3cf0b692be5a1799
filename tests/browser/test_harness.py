"""The browser harness itself, before any page of the web client: Chromium reaches the real
server, screenshots land where CI keeps them, and the console and accessibility checks fail
when they should."""

import pytest

from tests.browser.harness import ConsoleErrors, check_accessibility, screenshot, screenshot_dir

pytestmark = pytest.mark.browser


def test_the_api_docs_page_renders_from_the_real_server_without_console_errors(page, base_url):
    from playwright.sync_api import expect

    page.goto(f"{base_url}/docs")

    expect(page.get_by_role("heading", name="Vigil")).to_be_visible()
    expect(page.get_by_text("/api/v1/studies").first).to_be_visible()
    paths = screenshot(page, "harness-api-docs")

    assert [p.name for p in paths] == [
        "harness-api-docs-desktop.png",
        "harness-api-docs-tablet.png",
    ]
    assert all(p.parent == screenshot_dir() and p.stat().st_size > 1000 for p in paths)
    assert page.viewport_size == {"width": 1280, "height": 800}


def test_the_collector_records_uncaught_errors_and_console_errors(browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        collector = ConsoleErrors().watch(page)
        page.goto("data:text/html,<title>t</title><p>nothing wrong yet</p>")
        assert collector.errors == []
        collector.check()

        with page.expect_event("pageerror"):
            page.evaluate("setTimeout(() => { throw new Error('late boom') }, 0)")
        with page.expect_event("console"):
            page.evaluate("console.error('told you so')")
        page.evaluate("console.log('only a log')")
    finally:
        context.close()

    assert len(collector.errors) == 2
    assert "late boom" in collector.errors[0]
    assert "told you so" in collector.errors[1]
    with pytest.raises(AssertionError, match=r"2 error\(s\) in the browser console"):
        collector.check()
    collector.allow("late boom")
    with pytest.raises(AssertionError, match=r"1 error\(s\)") as caught:
        collector.check()
    assert "told you so" in str(caught.value)


def test_the_accessibility_check_fails_naming_a_serious_violation(page):
    page.set_content("<html lang='en'><title>t</title><main><img src='x.png'></main></html>")

    with pytest.raises(pytest.fail.Exception) as failed:
        check_accessibility(page)

    assert "image-alt" in str(failed.value)
    assert "[critical]" in str(failed.value)


def test_the_accessibility_check_passes_a_plain_labelled_page(page):
    page.set_content(
        "<html lang='en'><title>t</title><main><h1>Sign in</h1>"
        "<label for='u'>Username</label><input id='u'></main></html>"
    )

    check_accessibility(page)
