"""The browser under test is the real Chromium, headless, and can render a page."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.support.browser import Shots


async def test_debians_chromium_renders_a_page_and_a_screenshot_is_kept(browser: Browser, shots: Shots) -> None:
    page = await browser.new_page()
    await page.set_content("<h1 data-testid='t'>12315</h1>")
    assert await page.get_by_test_id("t").inner_text() == "12315"
    assert browser.browser_type.name == "chromium" and browser.version
    assert (await shots.take(page, "hello")).stat().st_size > 0
