"""The application with the agent desktop and the wallboard wired as ``hotline serve`` wires
them, on the Asterisk stand-in, a real redis-server and SQLite; browsers that log in and talk
to it over HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from accounts.services import AccountService
from agent_desktop import wiring
from core.settings import Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.accounts.helpers import Users, browser, cheap_passwords, login, ws_connect
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually  # noqa: F401  (the desktop tests import it from here)

HANGZHOU, ZHEJIANG, XIHU, BEIJING = "330100", "330000", "330106", "110000"


@dataclass
class Desk:
    app: Application
    parts: wiring.Desktop
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




@pytest.fixture
def desk_settings(settings: Settings) -> Settings:
    # The HTTP server is started below, with the desktop on it; calls ring long enough to be
    # answered from the desktop; no announcements or overflows interrupt a test's call.
    return settings.model_copy(update={
        "queues": settings.queues.model_copy(update={
            "ring_timeout_s": 10, "wrap_up_s": 0.5, "overflow_after_s": [60.0], "announce_every_s": 60.0}),
    })


@pytest.fixture
async def desk(desk_settings: Settings, pbx_sim: PbxSim, prompts: PromptCatalogue) -> AsyncIterator[Desk]:
    """The application as `hotline serve` wires it, its HTTP API on a free port."""
    async with running(desk_settings, passwords=cheap_passwords()) as app:
        assert app.desk is not None and app.web_url is not None
        await asyncio.wait_for(app.desk.notifier.subscribed.wait(), 5)
        d = Desk(app, app.desk, app.accounts, Users(app.accounts), app.web_url, pbx_sim, prompts)
        try:
            yield d
        finally:
            for b in d._browsers:
                await b.http.close()


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
