"""A real headless Chromium (Debian's ``chromium``, driven by Playwright through
``executable_path``: Playwright's own browser download is never used), and screenshots as test
artifacts in ``test-artifacts/screenshots/``."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
#: As the machine's notes advise: this network is closed, and Chromium's background
#: connections would otherwise fail by the dozen at every start.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: run scripts/bootstrap.sh (apt install chromium)")
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Shots:
    """Screenshots of one test, numbered in order: ``<test>-01-<what>.png``."""

    def __init__(self, test_name: str) -> None:
        self.stem = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name)[:80]
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(self, page: Page, what: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.stem}-{self.count:02d}-{what}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)
