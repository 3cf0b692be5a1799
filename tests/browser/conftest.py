"""The browser tests: Vigil served by a real uvicorn process, driven by Debian's Chromium through
Playwright. Every test under tests/browser is marked ``browser``.

Fixtures:
- ``vigil_server`` (session): a ServerProcess on a fresh SQLite file, migrated, protocols loaded,
  demo study seeded (accounts of app/demo/seed.py, password DEMO_PASSWORD); ``base_url`` is its
  root URL (the web client at /, the API at /api/v1); ``tablet_token`` the device token of a
  bedside tablet at S01.
- ``browser`` (session): headless Chromium.
- ``page``: a page of its own browser context (no cookies shared between tests), 1280 x 800.
  Any console error or uncaught exception in it fails the test; ``console_errors`` is its
  collector, whose ``allow(pattern)`` excuses an error the test expects.

Without Playwright or Chromium the tests skip, saying how to install them; with CI or
VIGIL_REQUIRE_BROWSER set they fail instead. Helpers: tests/browser/harness.py."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import ROOT
from app.demo.seed import STUDY_CODE
from tests.browser.harness import (
    CHROMIUM_ARGS,
    ConsoleErrors,
    browser_missing,
    browser_required,
    chromium_path,
)
from tests.server_process import ServerProcess

HERE = Path(__file__).parent
CONSOLE = pytest.StashKey[ConsoleErrors]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    if (missing := browser_missing()) is None:
        return
    if browser_required():
        pytest.fail(f"the browser tests must run here (CI / VIGIL_REQUIRE_BROWSER): {missing}")
    pytest.skip(f"browser tests skipped: {missing}")


def _vigil(database_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"vigil {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def vigil_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("browser")
    database_url = f"sqlite:///{directory / 'vigil.db'}"
    for step in (["migrate"], ["protocol", "load"], ["demo"]):
        _vigil(database_url, *step)
    server = ServerProcess(database_url, directory / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tablet_token(vigil_server: ServerProcess) -> str:
    """The device token of a bedside tablet at S01, made as an admin makes one (`vigil device
    create`), for posting readings through the API as the tablet does."""
    database_url = vigil_server.env["VIGIL_DATABASE_URL"]
    made = _vigil(
        database_url, "device", "create", "browser-tablet", "--site", "S01", "--study", STUDY_CODE
    )
    return made.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def base_url(vigil_server: ServerProcess) -> str:
    return vigil_server.root


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    request.node.stash[CONSOLE] = ConsoleErrors().watch(opened)
    yield opened
    context.close()


@pytest.fixture
def console_errors(page: Any, request: pytest.FixtureRequest) -> ConsoleErrors:
    return request.node.stash[CONSOLE]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test whose page logged an error fails, after its own assertions passed."""
    result = yield
    if (collector := item.stash.get(CONSOLE, None)) is not None:
        collector.check()
    return result
