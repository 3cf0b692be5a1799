"""Helpers of the browser tests (tests/browser/conftest.py has the fixtures): Chromium's launch,
the console-error collector, signing in, the accessibility check and the screenshots."""

import os
import re
from pathlib import Path
from typing import Any

import pytest

from app.config import ROOT
from app.demo.seed import DEMO_PASSWORD, DEMO_PEOPLE

INSTALL_HINT = "apt-get install -y chromium"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_WIDTHS = {"desktop": 1280, "tablet": 768}
FAILING_IMPACTS = frozenset({"serious", "critical"})


def chromium_path() -> str:
    """The Chromium to launch: VIGIL_CHROMIUM, else Debian's."""
    return os.environ.get("VIGIL_CHROMIUM", CHROMIUM)


def browser_required() -> bool:
    """In CI (CI or VIGIL_REQUIRE_BROWSER set) a missing browser fails the tests, else skips."""
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return ci or os.environ.get("VIGIL_REQUIRE_BROWSER", "") not in ("", "0")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return (
            f"{exc}: install the dev extra (.venv/bin/pip install -c constraints.txt -e '.[dev]')"
        )
    path = chromium_path()
    if not os.access(path, os.X_OK):
        return f"no Chromium at {path}: install it with `{INSTALL_HINT}`"
    return None


class ConsoleErrors:
    """What went wrong in a page: console messages of type error and uncaught exceptions.
    ``allow(pattern)`` excuses the messages a test expects (a regex, searched)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def watch(self, page: Any) -> "ConsoleErrors":
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        return self

    def _console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url") or ""
            self.errors.append(f"console.error: {message.text}" + (f" ({where})" if where else ""))

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def check(self) -> None:
        if found := self.unexpected():
            lines = "\n".join(f"  - {error}" for error in found)
            raise AssertionError(f"{len(found)} error(s) in the browser console:\n{lines}")


def sign_in(
    page: Any, base_url: str, username: str, password: str = DEMO_PASSWORD, timeout: float = 5000
) -> None:
    """Sign in as a demo account through the form, as a person does: / sends a signed-out
    visitor to /login; afterwards the header (<header>) names the user and their role and has
    a Sign out button. ``timeout`` (ms) bounds each wait."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login(\?|$)"), timeout=timeout)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    header = page.get_by_role("banner")
    expect(header.get_by_role("button", name="Sign out")).to_be_visible(timeout=timeout)
    person = {name: (shown, role) for name, shown, role, _ in DEMO_PEOPLE}.get(username)
    if person is not None:
        shown, role = person
        expect(header).to_contain_text(shown, timeout=timeout)
        expect(header).to_contain_text(
            re.compile(role.value.replace("_", "[ _]"), re.I), timeout=timeout
        )


def check_accessibility(page: Any, context: Any = None) -> None:
    """Fail, listing them, if axe-core finds violations of impact serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page, context=context).response["violations"]
    bad = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    if bad:
        lines = []
        for v in bad:
            lines.append(f"  - [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
            lines += [f"      {', '.join(map(str, node['target']))}" for node in v["nodes"][:5]]
            if len(v["nodes"]) > 5:
                lines.append(f"      ... and {len(v['nodes']) - 5} more")
        pytest.fail(f"accessibility violations on {page.url}:\n" + "\n".join(lines), pytrace=False)


def screenshot_dir() -> Path:
    return Path(os.environ.get("VIGIL_SCREENSHOT_DIR") or ROOT / "var" / "screenshots")


def screenshot(page: Any, name: str) -> list[Path]:
    """Full-page PNGs of the page at desktop and tablet widths: <dir>/<name>-desktop.png and
    <name>-tablet.png; the viewport is put back afterwards."""
    assert re.fullmatch(r"[\w-]+", name), f"a screenshot name of letters, digits, - and _: {name!r}"
    directory = screenshot_dir()
    directory.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    paths = []
    try:
        for label, width in SCREENSHOT_WIDTHS.items():
            page.set_viewport_size({"width": width, "height": before["height"] if before else 800})
            path = directory / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
    finally:
        if before:
            page.set_viewport_size(before)
    return paths
