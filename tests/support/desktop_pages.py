"""The agent desktop's page in a real Chromium, as the browser tests drive it: the application
with an agent and a supervisor, a logged-in page (language, time zone and locale of the browser
chosen by the test), and a caller who reaches the agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, Locator, Page, expect

from core.settings import Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.support.accounts import PASSWORD

#: How long the page may take to show what the server did (a queue offer, a save).
WAIT_MS = 10_000
AGENT = "wang"
AGENT_ID = "1001"


@asynccontextmanager
async def desk_app(settings: Settings, *, wrap_up_s: float = 1,
                   ring_timeout_s: float = 30) -> AsyncIterator[Application]:
    """The application as ``hotline serve`` wires it, with agent ``wang`` (1001, Hangzhou, general
    line) and supervisor ``zhejiang``; calls ring long enough to type while they ring."""
    settings = settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "ring_timeout_s": ring_timeout_s, "wrap_up_s": wrap_up_s, "overflow_after_s": [120.0],
        "announce_every_s": 120.0})})
    async with running(settings) as app:
        await app.accounts.add_user(username=AGENT, password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id=AGENT_ID, sip_endpoint=f"PJSIP/{AGENT_ID}",
                                    sip_password="sip-secret-1001", lines=["general"])
        await app.accounts.add_user(username="zhejiang", password=PASSWORD, role="supervisor",
                                    jurisdiction="330000", display_name="浙江值班长")
        yield app


async def open_page(browser: Browser, *, locale: str = "zh-CN", timezone_id: str | None = None) -> Page:
    """A fresh browser profile (its own localStorage) with the browser's language and time zone."""
    options: dict[str, str] = {"locale": locale}
    if timezone_id:
        options["timezone_id"] = timezone_id
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, **options)  # type: ignore[arg-type]
    return await context.new_page()


async def log_in(page: Page, app: Application, username: str = AGENT, *, language: str | None = None) -> Page:
    await page.goto(f"{app.web_url}/")
    if language:
        await page.get_by_test_id("lang-switch").select_option(language)
        await expect(page.locator("html")).to_have_attribute("lang", language)
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    return page


async def agent_available(page: Page, app: Application) -> None:
    """The agent's desktop is up, logged in to the queues and available."""
    await expect(page).to_have_url(f"{app.web_url}/desktop/")
    await page.get_by_test_id("queue-login").click()
    await expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "break", timeout=WAIT_MS)
    await page.get_by_test_id("state-available").click()
    await expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", "available", timeout=WAIT_MS)


async def caller_waits(pbx: PbxSim, prompts: PromptCatalogue, caller_id: str, digit: str = "1") -> SimCall:
    """A caller from Hangzhou dials 12315 and keys ``digit`` at the main menu (1: complaint)."""
    call = await pbx.place_call("057112315", caller_id=caller_id)
    await call.wait_for_playback(prompts.media("main_menu"))
    call.send_dtmf(digit)
    return call


async def ringing_call_id(page: Page) -> str:
    """The call id of the call that rings on the page now."""
    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-state", "ringing", timeout=WAIT_MS)
    call_id = await card.get_attribute("data-call-id")
    assert call_id
    return call_id


def tab_of_call(page: Page, call_id: str) -> Locator:
    """The ticket panel's tab of a call (its first, when it has several)."""
    return page.locator(f'[role="tab"][data-call-id="{call_id}"]').first


def field(page: Page, path: str) -> Locator:
    """An input of the ticket form on screen (the active tab's)."""
    return page.get_by_test_id("ticket-form-slot").get_by_test_id(f"field-{path}")


async def settle(page: Page) -> None:
    """Until the active tab has nothing unsaved (its edits saved and checked)."""
    await expect(page.get_by_test_id("ticket-save-state")).not_to_have_attribute("data-state", "unsaved",
                                                                                 timeout=WAIT_MS)
