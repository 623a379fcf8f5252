"""A real browser for the panel's tests: Playwright driving Debian's chromium (`make test`
installs it; nothing is downloaded), console and page errors collected per page, screenshots
into test-artifacts/ at the repository root.

Use the `browser` fixture (import it into the test module) and `open_page`:

    from tests.browser import browser, open_page  # noqa: F401  (fixture)

    async def test_x(browser):
        async with open_page(browser) as (page, watch):
            await page.goto(url)
            assert watch.errors == []
"""

from __future__ import annotations

import os
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("DIAMONDBOT_CHROMIUM", "/usr/bin/chromium")
# No sandbox (tests may run as root), and nothing that reaches out to the network by itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class PageWatch:
    """What went wrong on a page: console errors, uncaught exceptions, failed requests."""

    errors: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("framenavigated", lambda f: self.navigations.append(f.url) if f == page.main_frame else None)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console error: {msg.text} ({msg.location.get('url', '')})")

    def _failed(self, request: Any) -> None:
        # A page leaving while its event stream is open cancels that request, and chromium asks
        # for the tab's icon late, so leaving a page can cancel that too: neither is an error.
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and (request.url.endswith("/api/events")
                                         or "/static/favicon.svg" in request.url):
            return
        self.errors.append(f"request failed: {request.method} {request.url}: {failure}")

    def take(self) -> list[str]:
        """The errors so far, and a fresh start for the next page."""
        errors, self.errors = self.errors, []
        return errors


def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                    "(or: apt-get install chromium); browsers are never downloaded")
    return CHROMIUM


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless chromium for one test (async: pytest-playwright's sync fixtures clash with
    the async tests around them)."""
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@asynccontextmanager
async def open_page(browser: Browser, *, viewport: dict[str, int] | None = None,
                    locale: str = "bn-BD") -> AsyncIterator[tuple[Page, PageWatch]]:
    """A page in a fresh context (its own cookies), watched for errors."""
    context = await browser.new_context(viewport=viewport or DESKTOP, locale=locale,
                                        timezone_id="Asia/Dhaka")
    page = await context.new_page()
    watch = PageWatch()
    watch.attach(page)
    try:
        yield page, watch
    finally:
        await context.close()


def artifact_path(name: str) -> Path:
    """A file in test-artifacts/ (created on first use)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", name)


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """A PNG of the page into test-artifacts/NAME.png."""
    path = artifact_path(f"{name}.png")
    await page.screenshot(path=str(path), full_page=full_page)
    return path


__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "DESKTOP", "PHONE", "PageWatch", "artifact_path", "browser",
           "open_page", "screenshot"]
