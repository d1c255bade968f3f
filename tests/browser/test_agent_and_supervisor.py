"""The acceptance scenario in a real browser: an agent logs in, goes available, a simulated call
arrives and is answered, the agent fills in a ticket with a wrong credit code, sees the error,
corrects it and submits; a supervisor watches the queue count and the agent's state change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.support.accounts import PASSWORD
from tests.support.browser import Shots
from tests.support.documents import CREDIT_CODE

pytestmark = pytest.mark.slow

WRONG_CODE = "91330106MA2B3C4D5X"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    settings = settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "ring_timeout_s": 30, "wrap_up_s": 1, "overflow_after_s": [120.0], "announce_every_s": 120.0})})
    async with running(settings) as app:
        await app.accounts.add_user(username="wang", password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id="1001", sip_endpoint="PJSIP/1001",
                                    sip_password="sip-secret-1001", lines=["general"])
        await app.accounts.add_user(username="zhejiang", password=PASSWORD, role="supervisor",
                                    jurisdiction="330000", display_name="浙江值班长")
        yield app


async def log_in(browser: Browser, app: Application, username: str) -> Page:
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await page.goto(f"{app.web_url}/")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    return page


async def test_an_agent_answers_a_call_and_files_a_ticket_while_the_supervisor_watches(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots
) -> None:
    pbx_sim.endpoint("PJSIP/1001", mode="manual")  # the phone rings until answered on the desktop
    agent = await log_in(browser, app, "wang")
    await expect(agent).to_have_url(f"{app.web_url}/desktop/")
    await agent.get_by_test_id("queue-login").click()  # logged in to the queues, on a break until ready
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "break")

    boss = await log_in(browser, app, "zhejiang")
    await expect(boss).to_have_url(f"{app.web_url}/wallboard/")
    await expect(boss.get_by_test_id("figure-waiting")).to_have_attribute("data-value", "0")
    await expect(boss.get_by_test_id("agent-1001")).to_have_attribute("data-state", "break")
    await shots.take(boss, "wallboard-quiet")

    # A caller from Hangzhou dials 12315 and chooses "complaint": nobody is free, the call waits.
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await call.wait_for_playback(prompts.media("main_menu"))
    call.send_dtmf("1")
    await expect(boss.get_by_test_id("figure-waiting")).to_have_attribute("data-value", "1", timeout=10_000)
    await shots.take(boss, "wallboard-one-waiting")

    await agent.get_by_test_id("state-available").click()
    await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "ringing", timeout=10_000)
    await expect(agent.get_by_test_id("call-caller")).to_have_text("138****8000")
    await expect(boss.get_by_test_id("agent-1001")).to_have_attribute("data-state", "ringing")
    await expect(boss.get_by_test_id("figure-waiting")).to_have_attribute("data-value", "0")
    await shots.take(agent, "desktop-ringing")

    await agent.get_by_test_id("call-answer").click()
    await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "connected", timeout=10_000)
    await expect(boss.get_by_test_id("agent-1001")).to_have_attribute("data-state", "on_call")

    # The caller is in Xihu district, not just "Hangzhou": the agent corrects it.
    await agent.get_by_test_id("fix-jurisdiction-code").fill("330106")
    await agent.get_by_test_id("fix-jurisdiction-submit").click()
    await expect(agent.get_by_test_id("call-jurisdiction")).to_contain_text("330106", timeout=10_000)

    await agent.get_by_test_id("field-respondent.name").fill("杭州某某电器有限公司")
    await agent.get_by_test_id("field-respondent.credit_code").fill(WRONG_CODE)
    await agent.get_by_test_id("field-respondent.region").fill("330106")
    await agent.get_by_test_id("field-summary").fill("购买的洗衣机三周内两次故障，商家拒绝退货。")
    problem = agent.get_by_test_id("problem-respondent.credit_code")
    await expect(problem).not_to_be_empty(timeout=10_000)
    await shots.take(agent, "ticket-wrong-credit-code")

    await agent.get_by_test_id("field-respondent.credit_code").fill(CREDIT_CODE)
    await expect(problem).to_be_empty(timeout=10_000)
    await agent.get_by_test_id("ticket-submit").click()
    await expect(agent.get_by_test_id("ticket-status")).to_have_attribute("data-status", "completed", timeout=10_000)
    await shots.take(agent, "ticket-completed")

    [ticket] = [t for t in await app.tickets.list_for_call(await call_id_of(app, call.channel_id))]
    assert ticket.respondent_credit_code == CREDIT_CODE and ticket.status == "completed"
    await call.hangup()
    await expect(boss.get_by_test_id("agent-1001")).to_have_attribute("data-state", "wrap_up", timeout=10_000)
    await shots.take(boss, "wallboard-wrap-up")


async def call_id_of(app: Application, channel_id: str) -> str:
    await app.records.flush()
    record = await app.call_records.by_channel(channel_id)
    assert record is not None
    return record.call_id


async def test_a_supervisor_reads_the_wallboard_in_english_drills_down_to_hangzhou_and_listens_in(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots
) -> None:
    await app.accounts.add_user(username="boss330", password=PASSWORD, role="supervisor", jurisdiction="330000",
                                display_name="Zhejiang duty", sip_endpoint="PJSIP/8001")
    pbx_sim.endpoint("PJSIP/1001", mode="manual")
    agent = await log_in(browser, app, "wang")
    await agent.get_by_test_id("queue-login").click()
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "break")
    await agent.get_by_test_id("state-available").click()
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await call.wait_for_playback(prompts.media("main_menu"))
    call.send_dtmf("1")
    await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "ringing", timeout=10_000)
    await agent.get_by_test_id("call-answer").click()
    await expect(agent.get_by_test_id("call-state")).to_have_attribute("data-state", "connected", timeout=10_000)

    boss = await log_in(browser, app, "boss330")
    await boss.get_by_test_id("lang-switch").select_option("en-US")
    await expect(boss.locator("html")).to_have_attribute("lang", "en-US")
    await boss.get_by_test_id("drill-330100").click()
    await expect(boss.get_by_test_id("wallboard-node")).to_have_attribute("data-code", "330100")
    await expect(boss.get_by_test_id("path-330000")).to_be_visible()
    await expect(boss.get_by_test_id("agent-1001")).to_have_attribute("data-state", "on_call")

    await boss.get_by_test_id("monitor-listen-1001").click()
    await expect(boss.get_by_test_id("monitor-status")).to_have_attribute("data-mode", "listen", timeout=10_000)
    snoops = [ch for ch in pbx_sim.engine.channels.values() if ch.name.startswith("Snoop/")]
    assert snoops, "listening puts a snoop on the agent's leg"
    await shots.take(boss, "wallboard-english-listening")
    await boss.get_by_test_id("monitor-stop").click()
    await expect(boss.get_by_test_id("monitor-status")).to_be_hidden(timeout=10_000)
    await call.hangup()
