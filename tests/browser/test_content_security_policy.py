"""The pages work under their Content-Security-Policy in a real browser: logging in, the agent's
desktop and the supervisor's wallboard load, show who is logged in, and Chromium reports no
violation of the policy (no inline script, style or handler it would have blocked)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, ConsoleMessage, expect

from core.settings import Settings
from hotline.app import Application
from tests.fixtures.app import running
from tests.support.accounts import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with running(settings) as app:
        await app.accounts.add_user(username="wang", password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id="1001", sip_endpoint="PJSIP/1001",
                                    lines=["general"])
        await app.accounts.add_user(username="zhejiang", password=PASSWORD, role="supervisor",
                                    jurisdiction="330000", display_name="浙江值班长")
        yield app


@pytest.mark.parametrize(("username", "page_path", "name_id", "name"), [
    ("wang", "/desktop/", "agent-name", "王芳"), ("zhejiang", "/wallboard/", "user-name", "浙江值班长")])
async def test_the_pages_run_under_their_policy_without_a_violation(
        browser: Browser, app: Application, username: str, page_path: str, name_id: str, name: str) -> None:
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", watch)
    answer = await page.goto(f"{app.web_url}/")
    assert answer is not None and "frame-ancestors 'none'" in (await answer.all_headers())["content-security-policy"]
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(f"{app.web_url}{page_path}")
    await expect(page.get_by_test_id(name_id)).to_have_text(name)
    await page.get_by_test_id("lang-switch").select_option("en-US")  # the texts load under the policy too
    await expect(page.locator("html")).to_have_attribute("lang", "en-US")
    assert violations == []
