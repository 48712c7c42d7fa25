"""A real headless browser for the HTML exports and reports: Debian's ``chromium``, driven by
Playwright (the Python package; no browser download: it launches the system's binary).

Without chromium the tests skip on a laptop and fail under ``CI=true`` (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("EVAC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Opened:
    """A page as the browser showed it: what it logged, what it tried to fetch, and the page."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"page errors: {self.page_errors}"
        fetched = [url for url in self.requests if not url.startswith(("file:", "data:", "about:"))]
        assert fetched == [], f"the file fetched from the network: {fetched}"


class Browser:
    def __init__(self, browser: object) -> None:
        self._browser = browser

    def open(self, path: Path, screenshot: Path | None = None) -> Opened:
        """Open a local file, wait until it has loaded, screenshot the whole page if asked."""
        page = self._browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        opened = Opened(page)
        page.on("console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: opened.page_errors.append(str(e)))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(path.resolve().as_uri(), wait_until="load")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        return opened


def open_browser() -> Iterator[Browser]:
    """Debian's chromium under Playwright, for the span of a ``yield from``."""
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install chromium; .ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield Browser(launched)
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break the tests of later modules that call ``asyncio.run``."""
    yield from open_browser()
