"""The agent desktop and the wallboard from a browser's side: the running application with its
parts (:class:`Desk`, built by the ``desk`` fixture of ``tests/fixtures/desktop.py``), logged-in
browsers, WebSocket messages, and an agent taking a call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from accounts.services import AccountService
from agent_desktop.plugin import Desktop
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.waiting import eventually
from tests.support.accounts import Users, browser, login, ws_connect
from tests.support.jurisdictions import HANGZHOU


@dataclass
class Desk:
    app: Application
    parts: Desktop
    accounts: AccountService
    users: Users
    url: str
    pbx: PbxSim
    prompts: PromptCatalogue
    _browsers: list[Browser] = field(default_factory=list)

    async def browser_for(self, username: str) -> Browser:
        b = Browser(self.url)
        self._browsers.append(b)
        await b.login(username)
        return b

    async def caller_reaches_menu(self, dialled: str = "057112315", caller_id: str = "13800138000",
                                  digit: str = "1") -> SimCall:
        """A caller dials in and keys ``digit`` at the main menu (1: complaint)."""
        call = await self.pbx.place_call(dialled, caller_id=caller_id)
        await call.wait_for_playback(self.prompts.media("main_menu"))
        call.send_dtmf(digit)
        return call

    async def close_browsers(self) -> None:
        for b in self._browsers:
            await b.http.close()


class Browser:
    """A logged-in browser: JSON requests with the CSRF token, WebSockets with our Origin."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = browser()
        self.csrf = ""

    async def login(self, username: str) -> None:
        self.csrf = await login(self.http, self.url, username)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body, headers={"X-CSRF-Token": self.csrf}) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text and resp.content_type == "application/json" else text)

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, doc = await self.call(method, path, body)
        assert got == status, f"{method} {path} answered {got}: {doc}"
        return doc

    def ws(self, path: str) -> Any:
        return ws_connect(self.http, self.url, path)


async def next_message(ws: aiohttp.ClientWebSocketResponse, kind: str, *, timeout: float = 5.0,
                       where: Callable[[dict[str, Any]], bool] = lambda m: True) -> dict[str, Any]:
    """The next message of type ``kind`` (that passes ``where``), skipping the others."""
    async def read() -> dict[str, Any]:
        while True:
            message = await ws.receive_json()
            if message.get("type") == kind and where(message):
                return message

    return await asyncio.wait_for(read(), timeout)


class StuckSocket:
    """A browser that stopped reading: every send waits for ever."""

    closed = False
    close_code: int | None = None

    async def send_str(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int) -> None:
        self.closed, self.close_code = True, code


class ReadingSocket(StuckSocket):
    def __init__(self) -> None:
        self.received: list[str] = []

    async def send_str(self, text: str) -> None:
        self.received.append(text)


async def ready_agent(desk: Desk, agent_id: str = "1001", **fields: object) -> Browser:
    """An agent of Hangzhou, logged in and available, whose simulated phone waits for the desktop."""
    desk.pbx.endpoint(f"PJSIP/{agent_id}", mode="manual")
    await desk.users.agent(agent_id=agent_id, jurisdiction=HANGZHOU, **fields)
    agent = await desk.browser_for(f"agent{agent_id}")
    await agent.ok("POST", "/api/desktop/queues/login")
    await agent.ok("POST", "/api/desktop/state", {"state": "available"})
    return agent


async def answered_call(desk: Desk, agent: Browser) -> str:
    """A caller who chose "complaint" is connected to ``agent``; the call's id."""
    call = await desk.caller_reaches_menu()
    state = await eventually(lambda: state_is(agent, "ringing"))
    await agent.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(agent, "on_call"))
    assert desk.pbx.channel(call.channel_id) is not None
    return str(state["call"]["call_id"])


async def state_is(agent: Browser, wanted: str) -> dict | None:
    """The agent's desktop state if the agent is in state ``wanted``, else None."""
    state = await agent.ok("GET", "/api/desktop/state")
    return state if state["agent"]["state"] == wanted else None
