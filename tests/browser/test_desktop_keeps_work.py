"""The desktop never loses an agent's work, in a real browser: a half-written ticket stays in its
tab when the caller hangs up and the next call rings; text typed while a call rings stays when
that caller gives up; after a reload, and after logging out and in again, the drafts are in the
list of drafts and in their tabs with their text. Screenshots at each step
(``test-artifacts/screenshots/test_*-NN-*.png``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

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
    tab_of_call,
)

pytestmark = pytest.mark.slow

FIRST_SUMMARY = "购买的洗衣机三周内两次故障，商家拒绝退货，"  # half a sentence: the agent is still writing
FIRST_MORE = "要求退款。"
RINGING_TEXT = "来电人先说：电水壶漏电"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with desk_app(settings) as app:
        yield app


async def test_a_half_written_ticket_survives_the_next_call_a_caller_giving_up_and_a_reload(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots
) -> None:
    pbx_sim.endpoint(f"PJSIP/{AGENT_ID}", mode="manual")  # the phone rings until answered on the desktop
    page = await log_in(await open_page(browser), app)
    await agent_available(page, app)

    # The first caller is answered; the agent starts the ticket.
    first = await caller_waits(pbx_sim, prompts, "13800138000")
    first_id = await ringing_call_id(page)
    await page.get_by_test_id("call-answer").click()
    await expect(page.get_by_test_id("call-state")).to_have_attribute("data-state", "connected", timeout=WAIT_MS)
    await field(page, "respondent.name").fill("杭州某某电器有限公司")
    await field(page, "summary").fill(FIRST_SUMMARY)
    await settle(page)
    await expect(tab_of_call(page, first_id)).to_have_attribute("data-state", "draft")
    await shots.take(page, "first-call-half-written")

    # A second caller waits; the agent goes on typing, and before that is saved the first caller
    # hangs up: after the wrap-up the second call rings.
    second = await caller_waits(pbx_sim, prompts, "13900139000")
    await field(page, "summary").press_sequentially(FIRST_MORE, delay=20)
    await first.hangup()
    second_id = await ringing_call_id(page)
    assert second_id != first_id
    await expect(tab_of_call(page, second_id)).to_be_visible(timeout=WAIT_MS)
    await expect(tab_of_call(page, second_id)).to_have_attribute("data-fresh", "true")
    # The half-written ticket is still in front, with every word.
    await expect(tab_of_call(page, first_id)).to_have_attribute("aria-selected", "true")
    await expect(field(page, "summary")).to_have_value(FIRST_SUMMARY + FIRST_MORE)
    await expect(page.get_by_test_id("ticket-desk-notice")).to_be_visible()
    await shots.take(page, "next-call-rings-beside-the-draft")

    # The agent looks at the ringing call's tab and notes what the caller said in the menu;
    # the caller gives up before the call is answered.
    await tab_of_call(page, second_id).click()
    await expect(field(page, "summary")).to_have_value("")
    await field(page, "summary").fill(RINGING_TEXT)
    await second.hangup()
    await expect(page.get_by_test_id("call-state")).to_have_attribute("data-state", "ended", timeout=WAIT_MS)
    await expect(field(page, "summary")).to_have_value(RINGING_TEXT)
    await settle(page)
    await expect(tab_of_call(page, second_id)).to_have_attribute("data-state", "draft")
    await tab_of_call(page, first_id).click()
    await expect(field(page, "summary")).to_have_value(FIRST_SUMMARY + FIRST_MORE)
    await settle(page)
    await shots.take(page, "both-callers-gone-both-texts-kept")

    drafts = await app.tickets.drafts_of_agent(AGENT_ID)
    assert sorted(t.summary or "" for t in drafts) == sorted([FIRST_SUMMARY + FIRST_MORE, RINGING_TEXT])
    assert {t.call_id for t in drafts} == {first_id, second_id}

    # A reload: the tabs come back with their text, and both drafts are in the list.
    await page.reload()
    await expect(tab_of_call(page, first_id)).to_be_visible(timeout=WAIT_MS)
    await expect(tab_of_call(page, second_id)).to_be_visible()
    await expect(tab_of_call(page, first_id)).to_have_attribute("aria-selected", "true")
    await expect(field(page, "summary")).to_have_value(FIRST_SUMMARY + FIRST_MORE)
    await expect(field(page, "respondent.name")).to_have_value("杭州某某电器有限公司")
    for ticket in drafts:
        await expect(page.get_by_test_id(f"draft-{ticket.id}")).to_contain_text((ticket.summary or "")[:10])
    await expect(page.get_by_test_id(f"draft-{drafts[0].id}")).to_contain_text("139****9000")
    await shots.take(page, "after-reload-tabs-and-drafts")

    # A draft's tab closed: the draft is still in the list, and opens again from there.
    ringing_draft = next(t for t in drafts if t.call_id == second_id)
    await page.get_by_test_id(f"ticket-tab-close-{ringing_draft.id}").click()
    await expect(tab_of_call(page, second_id)).to_have_count(0)
    await expect(page.get_by_test_id(f"draft-{ringing_draft.id}")).to_have_attribute("data-open", "false")
    await page.get_by_test_id(f"draft-{ringing_draft.id}").click()
    await expect(tab_of_call(page, second_id)).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
    await expect(field(page, "summary")).to_have_value(RINGING_TEXT)

    # Logged out and in again, in a browser that never saw the desk (no localStorage): the list
    # of drafts has both, and a draft opens in its tab with its text.
    await page.get_by_test_id("logout").click()
    await expect(page).to_have_url(f"{app.web_url}/")
    other = await log_in(await open_page(browser), app)
    for ticket in drafts:
        await expect(other.get_by_test_id(f"draft-{ticket.id}")).to_be_visible(timeout=WAIT_MS)
    await other.get_by_test_id(f"draft-{ringing_draft.id}").click()
    await expect(tab_of_call(other, second_id)).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
    await expect(field(other, "summary")).to_have_value(RINGING_TEXT)
    await shots.take(other, "new-login-opens-a-draft-from-the-list")


async def test_text_typed_while_a_call_rings_is_kept_through_a_reload_at_once_and_the_caller_giving_up(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots
) -> None:
    pbx_sim.endpoint(f"PJSIP/{AGENT_ID}", mode="manual")
    page = await log_in(await open_page(browser), app)
    await agent_available(page, app)
    call = await caller_waits(pbx_sim, prompts, "13800138000")
    call_id = await ringing_call_id(page)
    await expect(tab_of_call(page, call_id)).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
    # Typed and the page reloaded before any save could start: only this browser has the text.
    await field(page, "summary").fill(RINGING_TEXT)
    await page.reload()
    await expect(tab_of_call(page, call_id)).to_be_visible(timeout=WAIT_MS)
    await expect(field(page, "summary")).to_have_value(RINGING_TEXT)
    await shots.take(page, "typed-while-ringing-after-reload")
    await call.hangup()
    await expect(page.get_by_test_id("call-state")).to_have_attribute("data-state", "ended", timeout=WAIT_MS)
    await settle(page)
    await expect(field(page, "summary")).to_have_value(RINGING_TEXT)
    [draft] = await app.tickets.drafts_of_agent(AGENT_ID)
    assert draft.summary == RINGING_TEXT and draft.call_id == call_id
    await expect(page.get_by_test_id(f"draft-{draft.id}")).to_contain_text(RINGING_TEXT[:8], timeout=WAIT_MS)
    await shots.take(page, "caller-gave-up-text-saved")
