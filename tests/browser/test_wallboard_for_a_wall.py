"""The wallboard as supervisors meet it, with calls in the system: on a 1920×1080 wall display
(?screen=wall: dark, large, one screen without scrolling) and on a 1366×768 (and 1280×800) laptop, in Chinese
and in English, for the national duty officer (a map of the 34 provincial units) and for
Zhejiang's (a map of its cities). The national map has the South China Sea islands and the
dashed national boundary in an inset (南海诸岛), a province's has not. Clicking Zhejiang on the
national map drills down to its cities and the way back up returns; gauges show; nothing on
screen is developer text, and no text cell is wider than its box. Screenshots of each in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update

from core.db import sessionmaker
from core.settings import Settings
from core.vocabulary import CHINA_TZ
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually
from tests.support.accounts import PASSWORD, cheap_passwords
from tests.support.browser import Shots
from tests.support.desktop import Browser as ApiBrowser
from tests.support.documents import CREDIT_CODE
from tests.support.wording import developer_text, visible_text
from tickets.models import Ticket

pytestmark = pytest.mark.slow

WALL = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
SMALL_LAPTOP = {"width": 1280, "height": 800}
#: More of Hangzhou's agents than a wall's list has room for, logged in and on a break.
HANGZHOU_TEAM = {str(2001 + n): f"杭州坐席{n + 1:02d}" for n in range(16)}
#: Names of people and businesses are data, shown as entered, in whichever language the page is.
PEOPLE = ["王芳", "李强", "全国值班长", "浙江值班长", *HANGZHOU_TEAM.values(), "杭州示例电器有限公司"]

# Text wider than its box: clipped, cut by an ellipsis or spilling (on the leaves of the layout:
# cells, labels, figures, buttons, headings). Measured on the text itself, since a table cell
# that cuts its text with an ellipsis reports no overflow of its own.
_OVERFLOWING = """() => {
  const boxes = document.querySelectorAll(
    "td, th, h1, h2, .figure .label, .figure .value, .figure .sub, .gauge figcaption, .gauge-label, .gauge-detail, "
    + ".agent-states .state, .topbar > *, .panel-head > *, .legend span, .map-legend li, button");
  const found = [];
  const range = document.createRange();
  for (const box of boxes) {
    if (!box.offsetParent || !box.textContent.trim()) continue;  // not shown
    const style = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    range.selectNodeContents(box);
    const text = range.getBoundingClientRect().width;
    // ...or pushed past the edge of its panel (which clips it).
    const frame = box.closest(".panel, .topbar");
    const right = box.getBoundingClientRect().right;
    const past = (frame && right > frame.getBoundingClientRect().right + 1)
      || right > box.parentElement.getBoundingClientRect().right + 1;
    if (box.scrollWidth > box.clientWidth + 1 || text > room + 1 || past) {
      found.push(`${box.tagName} "${box.textContent.trim().slice(0, 40)}" ${Math.round(text)}>${Math.round(room)}`);
    }
  }
  return found;
}"""
_PAGE_SCROLLS = "() => document.scrollingElement.scrollHeight > window.innerHeight + 1"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    settings = settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "ring_timeout_s": 30, "wrap_up_s": 1, "overflow_after_s": [300.0], "announce_every_s": 300.0})})
    async with running(settings, passwords=cheap_passwords()) as app:
        await app.accounts.add_user(username="wang", password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id="1001", sip_endpoint="PJSIP/1001",
                                    sip_password="sip-secret-1001", lines=["general"])
        await app.accounts.add_user(username="li", password=PASSWORD, role="agent", jurisdiction="440100",
                                    display_name="李强", agent_id="1002", sip_endpoint="PJSIP/1002",
                                    sip_password="sip-secret-1002", lines=["general"])
        for agent_id, name in HANGZHOU_TEAM.items():
            await app.accounts.add_user(username=f"a{agent_id}", password=PASSWORD, role="agent",
                                        jurisdiction="330100", display_name=name, agent_id=agent_id,
                                        sip_endpoint=f"PJSIP/{agent_id}", sip_password=f"sip-secret-{agent_id}",
                                        lines=["general"])
        await app.accounts.add_user(username="china", password=PASSWORD, role="supervisor",
                                    jurisdiction="000000", display_name="全国值班长")
        await app.accounts.add_user(username="zhejiang", password=PASSWORD, role="supervisor",
                                    jurisdiction="330000", display_name="浙江值班长")
        yield app


async def tickets_due_today(app: Application, count: int) -> None:
    """Completed complaints of Xihu district whose acceptance is due today."""
    today = datetime.now(UTC).astimezone(CHINA_TZ).date()
    for n in range(count):
        ticket = await app.tickets.create({
            "case_type": "complaint", "channel": "web", "caller": {"phone": f"1380013{n:04d}"},
            "respondent": {"name": "杭州示例电器有限公司", "credit_code": CREDIT_CODE, "region": "330106"},
            "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。",
            "handling": {"region": "330106", "level": "county"},
        }, by="web")
        ticket = await app.tickets.complete(ticket.id, by="web", version=ticket.version)
        async with sessionmaker(app.engine)() as session, session.begin():
            await session.execute(update(Ticket).where(Ticket.id == ticket.id).values(accept_by=today))


async def calls_in_the_system(app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue) -> list[SimCall]:
    """Hangzhou's agent talks to one caller while two more wait (the rest of the team on a break);
    Guangzhou's agent is on a break with one caller waiting."""
    assert app.web_url is not None
    agents = []
    team = [(f"a{agent_id}", f"PJSIP/{agent_id}") for agent_id in HANGZHOU_TEAM]
    for username, endpoint in (("wang", "PJSIP/1001"), ("li", "PJSIP/1002"), *team):
        pbx_sim.endpoint(endpoint, mode="answer")
        agent = ApiBrowser(app.web_url)
        await agent.login(username)
        await agent.ok("POST", "/api/desktop/queues/login")
        agents.append(agent)
    await agents[0].ok("POST", "/api/desktop/state", {"state": "available"})
    calls = []
    for dialled, caller in (("057112315", "13800138000"), ("057112315", "13800138001"),
                            ("057112315", "13800138002"), ("02012315", "13900139000")):
        call = await pbx_sim.place_call(dialled, caller_id=caller)
        await call.wait_for_playback(prompts.media("main_menu"))
        call.send_dtmf("1")
        calls.append(call)

    async def queued() -> bool:
        state = await agents[0].ok("GET", "/api/desktop/state")
        return state["agent"]["state"] == "on_call"

    await eventually(queued)
    for agent in agents:
        await agent.http.close()
    return calls


async def open_wallboard(browser: Browser, app: Application, username: str, language: str, *, wall: bool) -> Page:
    context = await browser.new_context(locale=language, viewport=WALL if wall else LAPTOP, timezone_id="Europe/London")
    # The language a supervisor chose last time on this screen (the switch remembers it).
    await context.add_init_script(f"localStorage.setItem('hotline.language', '{language}')")
    page = await context.new_page()
    await page.goto(f"{app.web_url}/")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(f"{app.web_url}/wallboard/")
    if wall:
        await page.goto(f"{app.web_url}/wallboard/?screen=wall")
        await expect(page.locator("body")).to_have_class(re.compile(r"\bwall\b"))
    await expect(page.locator("html")).to_have_attribute("lang", language)
    await expect(page.get_by_test_id("map-svg")).to_be_visible(timeout=10_000)
    await expect(page.get_by_test_id("figure-waiting")).not_to_have_attribute("data-value", "0", timeout=10_000)
    return page


async def reads_well(page: Page, language: str, *, wall: bool) -> None:
    """Gauges, no developer text, nothing clipped, and on the wall no scrolling."""
    await expect(page.get_by_test_id("gauge-service-level").locator("svg")).to_be_visible()
    await expect(page.get_by_test_id("gauge-answered-share").locator("svg")).to_be_visible()
    assert developer_text(await visible_text(page), language, allow=PEOPLE) == []
    overflowing = await page.evaluate(_OVERFLOWING)
    assert overflowing == [], "\n".join(overflowing)
    if wall:
        assert not await page.evaluate(_PAGE_SCROLLS), "the wall display scrolls"


async def provinces_on_the_map(page: Page) -> int:
    return await page.locator('[data-testid="map-svg"] path.region[data-code$="0000"]').count()


#: The South China Sea inset's name, as a national map published in China has it.
SOUTH_CHINA_SEA = {"zh-CN": "南海诸岛", "en-US": "South China Sea Islands"}
# Where the inset is, in the drawing's units: every province whose outline's box meets the
# frame's (none may: the inset sits in open sea), and whether its name is right under it.
_INSET = """() => {
  const svg = document.querySelector('[data-testid="map-svg"]');
  const frame = svg.querySelector('[data-testid="map-south-china-sea"] .inset-frame').getBBox();
  const label = svg.querySelector('[data-testid="map-south-china-sea"] .inset-label').getBBox();
  const meets = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  return {
    covered: [...svg.querySelectorAll("path.region")]
      .filter((p) => meets(p.getBBox(), frame)).map((p) => p.dataset.code),
    labelUnder: label.width > 0 && label.y >= frame.y + frame.height - 1 && label.y < frame.y + frame.height + 20
      && Math.abs(label.x + label.width - (frame.x + frame.width)) < 2
      && label.y + label.height <= svg.viewBox.baseVal.y + svg.viewBox.baseVal.height + 1,
  };
}"""


async def has_the_south_china_sea(page: Page, language: str) -> None:
    """The national map's inset at its lower right: the islands, the ten dashes of the national
    boundary, its name under its frame; over no province, and not a region one can click."""
    inset = page.get_by_test_id("map-south-china-sea")
    await expect(inset).to_be_visible()
    await expect(inset).to_have_text(SOUTH_CHINA_SEA[language])
    await expect(inset).to_have_css("pointer-events", "none")
    line = inset.get_by_test_id("map-south-china-sea-line")
    await expect(line).to_be_visible()
    assert (await line.get_attribute("d") or "").count("M") == 10  # one subpath a dash
    assert await inset.locator("path.region").count() == 0
    where = await page.evaluate(_INSET)
    assert where == {"covered": [], "labelUnder": True}, where


@pytest.mark.parametrize("language", ["zh-CN", "en-US"])
async def test_supervisors_read_the_map_wallboard_on_a_wall_and_on_a_laptop(
    browser: Browser, app: Application, pbx_sim: PbxSim, prompts: PromptCatalogue, shots: Shots, language: str,
) -> None:
    await calls_in_the_system(app, pbx_sim, prompts)
    await tickets_due_today(app, 3)
    for wall in (True, False):
        size = "1920x1080-wall" if wall else "1366x768"
        national = await open_wallboard(browser, app, "china", language, wall=wall)
        assert await provinces_on_the_map(national) == 34
        await has_the_south_china_sea(national, language)
        await expect(national.get_by_test_id("map-region-330000")).to_have_class("region drillable")
        await expect(national.get_by_test_id("child-330000")).to_be_visible()  # waiting calls: on the list
        await reads_well(national, language, wall=wall)
        await shots.take(national, f"national-{size}-{language}")
        if not wall:  # the smaller laptop too
            await national.set_viewport_size(SMALL_LAPTOP)
            await reads_well(national, language, wall=False)
            await shots.take(national, f"national-1280x800-{language}")
            await national.set_viewport_size(LAPTOP)

        await national.get_by_test_id("map-by-waiting").click()
        await expect(national.get_by_test_id("map-by-waiting")).to_have_attribute("aria-pressed", "true")
        await national.get_by_test_id("map-region-330000").click()
        await expect(national.get_by_test_id("wallboard-node")).to_have_attribute("data-code", "330000")
        await expect(national.get_by_test_id("map-svg")).to_have_attribute("data-drawing", "330000")
        cities = national.locator('[data-testid="map-svg"] path.region.drillable')
        await expect(cities).to_have_count(11)
        await expect(national.get_by_test_id("map-south-china-sea")).to_have_count(0)  # the country's only
        await national.get_by_test_id("map-region-330100").hover()
        await expect(national.get_by_test_id("map-tip")).to_be_visible()
        await reads_well(national, language, wall=wall)
        await shots.take(national, f"national-drilled-to-zhejiang-{size}-{language}")
        await national.get_by_test_id("map-up").click()
        await expect(national.get_by_test_id("wallboard-node")).to_have_attribute("data-code", "000000")
        await has_the_south_china_sea(national, language)
        # The button switches between the two modes, and the address keeps the choice.
        await national.get_by_test_id("wall-toggle").click()
        in_wall_mode = re.compile(r"\bwall\b")
        if wall:
            await expect(national.locator("body")).not_to_have_class(in_wall_mode)
        else:
            await expect(national.locator("body")).to_have_class(in_wall_mode)
        assert ("screen=wall" in national.url) is not wall
        await national.context.close()

        zhejiang = await open_wallboard(browser, app, "zhejiang", language, wall=wall)
        await expect(zhejiang.get_by_test_id("map-svg")).to_have_attribute("data-drawing", "330000")
        await expect(zhejiang.get_by_test_id("map-up")).to_be_hidden()  # nothing above their scope
        await expect(zhejiang.get_by_test_id("map-south-china-sea")).to_have_count(0)
        await expect(zhejiang.get_by_test_id("child-330100")).to_have_attribute("data-waiting", "2")
        await expect(zhejiang.locator('[data-testid="wallboard-deadlines"] tbody tr')).to_have_count(3)
        more = zhejiang.get_by_test_id("wallboard-agents-more")
        if wall:  # the list stops where its panel does, and says how many it leaves out
            await expect(more).not_to_be_empty()
            assert await zhejiang.locator('[data-testid="wallboard-agents"] tbody tr:visible').count() < 18
        else:
            await expect(more).to_be_hidden()
        await reads_well(zhejiang, language, wall=wall)
        await shots.take(zhejiang, f"zhejiang-{size}-{language}")
        if not wall:
            await zhejiang.set_viewport_size(SMALL_LAPTOP)
            await reads_well(zhejiang, language, wall=False)
            await shots.take(zhejiang, f"zhejiang-1280x800-{language}")
        await zhejiang.context.close()
