"""Debian's headless Chromium for the browser tests and the wallboard benchmark (Playwright
drives it through ``executable_path``: Playwright's own browser download is never used), and
screenshots as test artifacts in ``test-artifacts/screenshots/``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Playwright is imported by the tests that drive a browser, not by every test run
    from playwright.async_api import Page

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
