"""The application wired as ``hotline serve`` wires it, with recording on and the recordings'
HTTP API beside the desktop's, on the stand-in, a real redis-server and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from accounts.services import AccountService
from accounts.sessions import SessionStore
from accounts.web import install as install_accounts
from agent_desktop import wiring
from hotline.app import Application
from hotline.db import sessionmaker
from hotline.pbx_sim.server import PbxSim
from hotline.settings import RecordingSettings, Settings
from hotline.web import build_web_app
from ivr.prompts.catalogue import PromptCatalogue
from queues.services import QueueService
from recordings import http as recordings_http
from tests.accounts.helpers import Users, cheap_passwords
from tests.desktop.conftest import Desk


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def desk_settings(settings: Settings, store_root: Path) -> Settings:
    return settings.model_copy(update={
        "http": settings.http.model_copy(update={"enabled": False}),
        "queues": settings.queues.model_copy(update={
            "ring_timeout_s": 10, "wrap_up_s": 0.5, "overflow_after_s": [60.0], "announce_every_s": 60.0}),
        "recordings": RecordingSettings(enabled=True, root=store_root),
    })


@pytest.fixture
async def desk(desk_settings: Settings, pbx_sim: PbxSim, prompts: PromptCatalogue) -> AsyncIterator[Desk]:
    s = desk_settings
    app = Application(s)
    await app.start()
    await app.wait_connected()
    assert isinstance(app.queues, QueueService)
    sessions = SessionStore(app.redis, s.redis.prefix, s.http.session_idle_s)
    accounts = AccountService(sessionmaker(app.engine), app.queues.tree, passwords=cheap_passwords(),
                              session_store=sessions)
    parts = wiring.build(app, directory=wiring.AccountsDirectory(accounts))
    app._table.update(wiring.event_handlers(parts, app._table))
    web_app = build_web_app(tickets=app.tickets, intake=s.intake)
    install_accounts(web_app, accounts=accounts, sessions=sessions, settings=s, on_logout=parts.desktop.on_logout)
    parts.add_routes(web_app)
    recordings_http.add_routes(web_app, index=app.recordings.index, store=app.recordings.store,
                               tree=app.queues.tree)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    parts.start()
    await asyncio.wait_for(parts.notifier.subscribed.wait(), 5)
    d = Desk(app, parts, accounts, Users(accounts), f"http://{host}:{port}", pbx_sim, prompts)
    try:
        yield d
    finally:
        for b in d._browsers:
            await b.http.close()
        await runner.cleanup()
        await parts.stop()
        await app.stop()
