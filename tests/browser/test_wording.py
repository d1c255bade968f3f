"""No developer text on the login page and the desktop, in Chinese and in English, in a browser
set to New York time and American English (Playwright's ``timezone_id`` and ``locale``): what a
person reads, placeholders, titles and labels included (``tests.support.wording``), is words of
the page's language, and every time is China time in Chinese date order.

Looked at idle, with a call offered and its card, a ticket with live problems, a submitted
ticket (its deadlines, and the number the agent typed as typed), and the list of drafts.
Screenshots of each (``test-artifacts/screenshots/test_wording*``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.support.browser import Shots
from tests.support.desktop_pages import (
    AGENT_ID,
    WAIT_MS,
    agent_available,
    caller_waits,
    desk_app,
    field,
    log_in,
    open_page,
    ringing_call_id,
    settle,
)
from tests.support.documents import CREDIT_CODE
from tests.support.wording import developer_text, visible_text

pytestmark = pytest.mark.slow

CHINA = ZoneInfo("Asia/Shanghai")
#: Data the page shows as it is: the agent's name, what the agent typed, a place's name.
DATA = ("王芳", "杭州某某电器有限公司", "购买的洗衣机三周内两次故障，商家拒绝退货。", "售后电话一直打不通。", "杭州市")
#: A date in the browser's own order (mm/dd/yyyy or dd/mm/yyyy), which the desk never writes.
LOCALE_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b")
MENU_WORDS = {"zh-CN": "主菜单 › 1 投诉", "en-US": "Main menu › 1 Complaint"}
#: Every kind of step the IVR, the queues and the desktop write into a call's menu path
#: (ivr/flow.py, queues/flow.py, queues/services.py), and one this page does not know.
MENU_STEPS = ["main_menu:timeout", "main_menu:speech:no_match", "main_menu:speech:timeout",
              "main_menu:speech:report", "main_menu:9:no_match", "main_menu:0:operator", "ask_city:keyed:found",
              "ask_city:keyed:no_match", "ask_city:speech:330100", "ask_city:speech:timeout", "in_queue:callback",
              "transfer:queue:330100:price", "transfer:agent:1003", "next_menu:7:something_new"]
SUBMITTED = {"zh-CN": "已提交", "en-US": "Submitted"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with desk_app(settings) as app:
        yield app


async def reads_well(page: Page, language: str, what: str, shots: Shots) -> str:
    """Screenshot, then the page's visible text, checked: it is returned for more checks."""
    await shots.take(page, f"{language}-{what}")
    text = await visible_text(page)
    # A ticket's id is data too: shown short ("No. 3f2a9c1d"), whole in its title.
    ids = await page.eval_on_selector_all("[data-ticket-id]", "nodes => nodes.map(n => n.dataset.ticketId)")
    ids = [i for i in ids if i]
    found = developer_text(text, language, allow=(*DATA, *ids, *(i[:8] for i in ids)))
    assert not found, f"{what} in {language} shows {found}"
    assert not LOCALE_DATE.search(text), f"{what} in {language} writes a date in the browser's order"
    return text


def china_minutes(around: datetime) -> set[str]:
    return {(around + timedelta(minutes=d)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M") for d in (-1, 0, 1)}


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
async def test_the_login_page_and_the_desktop_read_as_words_in_china_time(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots, language: str
) -> None:
    pbx_sim.endpoint(f"PJSIP/{AGENT_ID}", mode="manual")
    page = await open_page(browser, locale="en-US", timezone_id="America/New_York")
    assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"

    await page.goto(f"{app.web_url}/")
    await page.get_by_test_id("lang-switch").select_option(language)
    await expect(page.locator("html")).to_have_attribute("lang", language)
    await page.get_by_test_id("login-submit").click()  # empty: the page says what is missing
    await expect(page.get_by_test_id("login-error")).to_be_visible()
    await reads_well(page, language, "login", shots)

    await log_in(page, app)
    await expect(page.locator("html")).to_have_attribute("lang", language, timeout=WAIT_MS)
    await agent_available(page, app)
    await reads_well(page, language, "idle", shots)

    call = await caller_waits(pbx_sim, prompts, "13800138000")
    await ringing_call_id(page)
    await expect(page.get_by_test_id("call-menu-path")).to_have_text(MENU_WORDS[language])
    await reads_well(page, language, "call-offered", shots)
    # Every other kind of step in words too (the page's own module, with the page's catalogue).
    steps = await page.evaluate("async (steps) => (await import('/desktop/menu-path.js')).menuPathWords(steps)",
                                MENU_STEPS)
    assert steps.count(" → ") == len(MENU_STEPS) - 1
    assert not developer_text(steps, language), steps

    await page.get_by_test_id("call-answer").click()
    await expect(page.get_by_test_id("call-state")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    await field(page, "caller.phone").fill("13712345678")
    await field(page, "respondent.name").fill("杭州某某电器有限公司")
    await field(page, "respondent.credit_code").fill("91330106MA2B3C4D5X")
    await field(page, "subject.amount").fill("a lot")
    await field(page, "summary").fill("漏电")
    await expect(page.get_by_test_id("ticket-problems-summary")).to_have_class("error", timeout=WAIT_MS)
    await expect(page.get_by_test_id("problem-subject.amount")).to_be_visible(timeout=WAIT_MS)
    await reads_well(page, language, "ticket-with-problems", shots)

    await field(page, "subject.amount").fill("199")
    await field(page, "respondent.credit_code").fill(CREDIT_CODE)
    await field(page, "respondent.region").fill("330106")
    await field(page, "subject.purchased_on").fill("2026/11/2")
    await field(page, "summary").fill("购买的洗衣机三周内两次故障，商家拒绝退货。")
    await field(page, "summary").blur()
    await expect(field(page, "subject.purchased_on")).to_have_value("2026-11-02")
    await settle(page)
    await expect(page.get_by_test_id("ticket-problems-summary")).to_have_attribute("data-count", "0", timeout=WAIT_MS)
    await page.get_by_test_id("ticket-submit").click()
    await expect(page.get_by_test_id("ticket-status")).to_have_attribute("data-status", "completed", timeout=WAIT_MS)
    await expect(page.get_by_test_id("ticket-status")).to_have_text(SUBMITTED[language])
    # Good news in the colour of good news; the number as the agent typed it.
    await expect(page.get_by_test_id("ticket-notice")).to_have_attribute("data-tone", "ok")
    await expect(page.get_by_test_id("ticket-notice")).to_have_class(re.compile(r"\bok\b"))
    await expect(field(page, "caller.phone")).to_have_value("13712345678")
    await expect(page.get_by_test_id("ticket-deadlines")).to_be_visible()
    await reads_well(page, language, "ticket-submitted", shots)
    accept_by = page.get_by_test_id("ticket-deadline-accept_by")
    if await accept_by.count():
        assert re.search(r"\d{4}-\d{2}-\d{2}", await accept_by.inner_text())

    # A second matter of the same call, left as a draft: the list of drafts, in China time.
    before = datetime.now(CHINA)
    await page.get_by_test_id("ticket-new").click()
    await field(page, "summary").fill("售后电话一直打不通。")
    await settle(page)
    drafts = page.get_by_test_id("drafts-list").locator("button.draft")
    await expect(drafts).to_have_count(1, timeout=WAIT_MS)
    await expect(drafts.first).to_contain_text("售后电话", timeout=WAIT_MS)
    when = await drafts.first.locator(".when").inner_text()
    assert when in china_minutes(before), f"{when} is not China time ({before:%Y-%m-%d %H:%M})"
    await expect(page.get_by_test_id("ticket-save-state")).to_contain_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    saved_at = re.search(r"\d{2}:\d{2}", await page.get_by_test_id("ticket-save-state").inner_text())
    assert saved_at and saved_at.group(0) in {m[-5:] for m in china_minutes(before)}
    await reads_well(page, language, "drafts", shots)
    await call.hangup()
