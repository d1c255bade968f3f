"""The events stream's connection: the resync before the new connection's events, which wait in
order; what it says when Asterisk refuses it; a message too big is a lost connection."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop
from aiohttp import web

from ari.dispatcher import Dispatcher
from ari.events import EventStream
from ari.models import ChannelDtmfReceived, Event
from tests.fixtures.waiting import eventually
from tests.support.ari import CHANNEL


def dtmf(digit: str) -> str:
    return json.dumps({"type": "ChannelDtmfReceived", "application": "hotline",
                       "timestamp": f"2026-11-24T10:00:0{digit}.000+0000", "channel": {**CHANNEL, "state": "Up"},
                       "digit": digit, "duration_ms": 160})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/ari/events", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    return runner, f"http://{host}:{port}"


async def nothing() -> None:
    return None


async def ignore(_key: str, _event: Event) -> None:
    return None


def when(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


class Stream:
    """The application's events stream against a test's server, quick to try again."""

    def __init__(self, url: str, on_connect: Callable[[], Awaitable[None]] = nothing,
                 sink: Callable[[str, Event], Awaitable[None]] = ignore) -> None:
        self.dispatcher = Dispatcher(sink)
        self.stream = EventStream(url, "hotline", "hotline", "secret", self.dispatcher, on_connect,
                                  initial_backoff_s=0.02, max_backoff_s=0.05)

    async def __aenter__(self) -> EventStream:
        self.task = asyncio.get_running_loop().create_task(self.stream.run())
        return self.stream

    async def __aexit__(self, *_: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.dispatcher.close()


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        runner, url = await serve(handler)
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_the_resync_runs_before_the_events_that_came_meanwhile_and_they_all_follow_in_order(server) -> None:  # type: ignore[no-untyped-def]
    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for digit in "123":  # at once: while the application is still resynchronizing
            await ws.send_str(dtmf(digit))
        async for _ in ws:
            pass
        return ws

    url = await server(events)
    steps: list[str] = []

    async def resync() -> None:
        await asyncio.sleep(0.2)
        steps.append("resync")

    async def sink(_key: str, event: Event) -> None:
        assert isinstance(event, ChannelDtmfReceived)
        steps.append(event.digit)

    reading = Stream(url, resync, sink)
    async with reading:
        async def three() -> bool:
            await reading.dispatcher.drain()
            return len(steps) == 4

        await eventually(three)
    assert steps == ["resync", "1", "2", "3"]


@pytest.mark.parametrize(("status", "level", "says"), [
    (401, logging.ERROR, "ARI refused the events WebSocket: HTTP 401 (check [ari] username and password)"),
    (403, logging.ERROR, "ARI refused the events WebSocket: HTTP 403 (check [ari] username and password)"),
    (503, logging.WARNING, "(refused with HTTP 503); trying again in"),
])
async def test_a_refused_connection_says_why_and_is_tried_again(
        server, caplog: pytest.LogCaptureFixture, status: int, level: int, says: str) -> None:  # type: ignore[no-untyped-def]
    tries = 0

    async def refuse(_request: web.Request) -> web.Response:
        nonlocal tries
        tries += 1
        return web.Response(status=status, text="no")

    url = await server(refuse)
    caplog.set_level(logging.INFO, "ari.events")
    async with Stream(url) as stream:
        await eventually(when(lambda: tries >= 2))
        assert stream.connections == 0 and not stream.connected.is_set()
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ari.events"]
    assert any(lvl == level and says in text for lvl, text in said), said
    if level == logging.ERROR:  # only the error: no second line with a problem
        assert all(lvl == logging.ERROR for lvl, _ in said), said


async def test_a_message_too_big_and_a_failed_resync_are_lost_connections(
        server, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(" " * (2**22 + 1))
        async for _ in ws:
            pass
        return ws

    url = await server(events)
    connects = 0

    async def resync() -> None:
        nonlocal connects
        connects += 1
        if connects == 2:
            raise RuntimeError("GET /channels failed")

    caplog.set_level(logging.INFO, "ari.events")
    async with Stream(url, resync) as stream:
        await eventually(when(lambda: stream.connections >= 3))
        assert stream.lost_at is not None
    said = [r.getMessage() for r in caplog.records if r.name == "ari.events"]
    assert any("ARI events connection lost (sent 1009 (message too big)" in s for s in said), said
    assert "resynchronization after connect failed" in said, said


def test_the_stream_reads_and_reconnects_under_uvloop_as_the_application_runs() -> None:
    # uvloop's transports are not asyncio's classes: what the protocol takes from them must hold.
    async def scenario() -> tuple[list[str], int]:
        async def events(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_str(dtmf("1"))
            await ws.send_str(dtmf("2"))
            async for _ in ws:
                pass
            return ws

        runner, url = await serve(events)
        digits: list[str] = []

        async def sink(_key: str, event: Event) -> None:
            digits.append(event.digit)  # type: ignore[attr-defined]

        try:
            async with Stream(url, sink=sink) as stream:
                await eventually(when(lambda: len(digits) == 2))
                await stream.disconnect()
                await eventually(when(lambda: len(digits) == 4 and stream.connected.is_set()))
                return digits, stream.connections
        finally:
            await runner.cleanup()

    assert uvloop.run(scenario()) == (["1", "2", "1", "2"], 2)
