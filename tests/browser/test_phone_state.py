"""The desktop's SIP.js softphone in a real browser: when it cannot reach Asterisk the page says
why and when it tries again and keeps the agent from going available; it reconnects by itself
and registers; when its connection drops, the agent is put on break "phone_offline" and the page
says so; when it is back, the agent stays on break until they choose Available.

Asterisk's SIP-over-WebSocket transport is played by :class:`Registrar` (just enough SIP for a
REGISTER), which also tells the ARI stand-in that the phone registered or lost its contact, as
Asterisk's PJSIP does: the application then hears ``EndpointStateChange`` over ARI."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web
from playwright.async_api import Browser, Page, expect

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from tests.fixtures.app import running
from tests.support.accounts import PASSWORD
from tests.support.browser import Shots

pytestmark = pytest.mark.slow

PHONE = "PJSIP/1001"
#: How long the page may take to notice a change (its retries wait 1 s, then 2 s ...).
WAIT_MS = 15_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registrar:
    """Asterisk's WSS transport for one phone, as far as registering goes: answers REGISTER
    (and OPTIONS) with 200 OK, echoing the Contact; marks the phone registered in the ARI
    stand-in while a registration holds, unregistered when it is withdrawn or its WebSocket
    closes. ``accepting = False`` refuses new WebSockets (HTTP 503), as a stopped Asterisk would."""

    def __init__(self, pbx: PbxSim, endpoint: str, port: int) -> None:
        self.pbx, self.endpoint, self.port = pbx, endpoint, port
        self.accepting = True
        self.registers = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        # The browser outlives this fixture: its phone's socket is closed here, or the
        # server would wait for it at cleanup.
        self.accepting = False
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop(self) -> None:
        """The connection to the phone breaks (Asterisk restarted, a network hiccup)."""
        for ws in list(self._sockets):
            await ws.close()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self.accepting:
            return web.Response(status=503, text="not now")
        ws = web.WebSocketResponse(protocols=("sip",))  # SIP.js asks for the "sip" subprotocol
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._answer(ws, message.data)
        finally:
            self._sockets.discard(ws)
            if not self._sockets:
                self.pbx.set_registered(self.endpoint, False)  # its only contact went with the socket
        return ws

    async def _answer(self, ws: web.WebSocketResponse, text: str) -> None:
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        method = head[0].split(" ", 1)[0]
        if method not in ("REGISTER", "OPTIONS"):
            return
        headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in head[1:])]
        compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact"}

        def all_of(name: str) -> list[str]:
            return [value for key, value in headers if compact.get(key.lower(), key.lower()) == name]

        to = all_of("to")[0]
        lines = ["SIP/2.0 200 OK", *(f"Via: {v}" for v in all_of("via")), f"From: {all_of('from')[0]}",
                 f"To: {to}" if ";tag=" in to else f"To: {to};tag=registrar", f"Call-ID: {all_of('call-id')[0]}",
                 f"CSeq: {all_of('cseq')[0]}"]
        if method == "REGISTER":
            contact = all_of("contact")[0] if all_of("contact") else "*"
            expires = all_of("expires")[0] if all_of("expires") else "600"
            registering = contact != "*" and expires != "0" and "expires=0" not in contact
            if registering:
                lines.append(f"Contact: {contact}")
            lines.append(f"Expires: {expires}")
        await ws.send_str("\r\n".join([*lines, "Content-Length: 0", "", ""]))
        if method == "REGISTER":
            self.registers += 1
            self.pbx.set_registered(self.endpoint, registering)


@pytest.fixture
async def registrar(pbx_sim: PbxSim) -> AsyncIterator[Registrar]:
    pbx_sim.set_registered(PHONE, False)  # nobody has registered yet
    r = Registrar(pbx_sim, PHONE, free_port())
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def app(settings: Settings, registrar: Registrar) -> AsyncIterator[Application]:
    settings = settings.model_copy(update={"desktop": settings.desktop.model_copy(update={
        "phone_mode": "sip", "sip_ws_url": f"ws://127.0.0.1:{registrar.port}/ws", "sip_domain": "pbx.test"})})
    async with running(settings) as app:
        await app.accounts.add_user(username="wang", password=PASSWORD, role="agent", jurisdiction="330100",
                                    display_name="王芳", agent_id="1001", sip_endpoint=PHONE,
                                    sip_password="sip-secret-1001", lines=["general"])
        yield app


async def log_in(browser: Browser, app: Application) -> Page:
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await page.goto(f"{app.web_url}/")
    await page.get_by_test_id("login-username").fill("wang")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(f"{app.web_url}/desktop/")
    return page


async def test_the_page_says_why_the_phone_cannot_ring_retries_and_keeps_the_agent_off_calls_meanwhile(
    browser: Browser, app: Application, registrar: Registrar, pbx_sim: PbxSim, shots: Shots
) -> None:
    agent = await log_in(browser, app)
    line, available = agent.get_by_test_id("phone-line"), agent.get_by_test_id("state-available")
    await agent.get_by_test_id("queue-login").click()
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "break")

    # Nothing listens at the phone's WebSocket: the page says so, and when it tries again.
    await expect(line).to_have_attribute("data-status", "disconnected", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("无法连接交换机（ws://")
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("秒后自动重试")
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("话机注册成功后才能示闲")
    await expect(agent.get_by_test_id("phone-status")).to_have_attribute("data-status", "disconnected")
    await expect(available).to_be_disabled()
    await shots.take(agent, "phone-unreachable")

    # Asterisk comes up: the phone registers by itself (or at once with "retry now").
    await registrar.start()
    await agent.get_by_test_id("phone-retry").click()
    await expect(line).to_have_attribute("data-status", "registered", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("phone-detail")).to_have_text("话机已注册，可以接听来电。", timeout=WAIT_MS)
    await expect(available).to_be_enabled()
    await available.click()
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    await shots.take(agent, "phone-registered-available")

    # The connection drops and Asterisk refuses new ones for now: the agent is taken off calls.
    registrar.accepting = False
    await registrar.drop()
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "break", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("agent-state-reason")).to_have_text("话机离线")
    await expect(line).to_have_attribute("data-status", "disconnected", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("话机离线期间不会为您分配来电")
    await expect(available).to_be_disabled()
    agent_now = await app.queue_engine.agent("1001")
    assert agent_now is not None and (agent_now["state"].value, agent_now["reason"]) == ("break", "phone_offline")
    await shots.take(agent, "phone-dropped-on-break")

    # Back: the phone re-registers by itself; the agent stays on break until they choose.
    registrar.accepting = True
    await expect(line).to_have_attribute("data-status", "registered", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("话机已恢复连接", timeout=WAIT_MS)
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "break")
    await shots.take(agent, "phone-back-still-on-break")
    await agent.get_by_test_id("lang-switch").select_option("en-US")
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("Choose Available when you are ready")
    await shots.take(agent, "phone-back-english")
    await available.click()
    await expect(agent.get_by_test_id("agent-state")).to_have_attribute("data-state", "available")
    assert registrar.registers >= 2


async def test_without_the_sip_js_bundle_the_page_says_to_ask_an_administrator_and_the_agent_cannot_go_available(
    browser: Browser, app: Application, shots: Shots
) -> None:
    context = await browser.new_context(locale="zh-CN")
    # As on a server where scripts/build_web.sh never ran: the bundle is not there.
    await context.route("**/vendor/sip.js", lambda route: route.fulfill(status=404, body="not found"))
    agent = await context.new_page()
    await agent.goto(f"{app.web_url}/")
    await agent.get_by_test_id("login-username").fill("wang")
    await agent.get_by_test_id("login-password").fill(PASSWORD)
    await agent.get_by_test_id("login-submit").click()
    await agent.get_by_test_id("queue-login").click()
    await expect(agent.get_by_test_id("phone-line")).to_have_attribute("data-status", "error", timeout=WAIT_MS)
    # The agent cannot build anything: they are told whom to ask (the log and the README say how).
    await expect(agent.get_by_test_id("phone-detail")).to_contain_text("话机组件未安装，请联系管理员")
    await expect(agent.get_by_test_id("phone-retry")).to_be_hidden()
    await expect(agent.get_by_test_id("state-available")).to_be_disabled()
    await shots.take(agent, "no-sip-bundle")
