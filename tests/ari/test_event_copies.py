"""A real Asterisk sends an event once per subscription that covers it: with the agents' phones
followed (``endpoint:PJSIP``), every event of a SIP channel arrives twice, byte for byte. Our
events stream hands each event to the call once: a digit keyed once is one key press. And it
hands on only the kinds of event somebody handles: most of what Asterisk sends about a call (its
dialplan's steps and variables, playbacks starting) is of use to nobody here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from ari.dispatcher import Dispatcher
from ari.events import EventStream
from ari.models import ChannelDtmfReceived, Event
from tests.fixtures.waiting import eventually
from tests.support.ari import CHANNEL


def dtmf(digit: str, at: str) -> str:
    return json.dumps({"type": "ChannelDtmfReceived", "application": "hotline", "timestamp": at,
                       "channel": {**CHANNEL, "state": "Up"}, "digit": digit, "duration_ms": 160})


class Switch:
    """An ARI events WebSocket that sends what a test gives it, as Asterisk would."""

    def __init__(self) -> None:
        self.to_send: asyncio.Queue[str] = asyncio.Queue()
        self.url = ""

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def send() -> None:
            while True:
                await ws.send_str(await self.to_send.get())

        sender = asyncio.get_running_loop().create_task(send())
        try:
            async for _message in ws:  # answers the client's close at once
                pass
        finally:
            sender.cancel()
        return ws


@pytest.fixture
async def switch() -> AsyncIterator[Switch]:
    sw = Switch()
    app = web.Application()
    app.router.add_get("/ari/events", sw.events)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    sw.url = f"http://{host}:{port}"
    try:
        yield sw
    finally:
        await runner.cleanup()


@dataclass
class Reading:
    """The application's side of the events connection: the stream, and what reached the calls."""

    stream: EventStream
    dispatcher: Dispatcher
    handled: list[Event] = field(default_factory=list)

    async def until(self, count: int) -> None:
        async def enough() -> bool:
            await self.dispatcher.drain()
            return len(self.handled) >= count

        await eventually(enough)
        await asyncio.sleep(0.1)  # nothing more comes


@asynccontextmanager
async def reading(switch: Switch, wanted: frozenset[str] | None = None) -> AsyncIterator[Reading]:
    """The events of ``switch`` read as the application reads them (``wanted``: the kinds some
    feature subscribed to; None takes every kind), connected before the test sends any."""
    handled: list[Event] = []

    async def sink(_key: str, event: Event) -> None:
        handled.append(event)

    async def nothing() -> None:
        return None

    dispatcher = Dispatcher(sink)
    stream = EventStream(switch.url, "hotline", "hotline", "secret", dispatcher, nothing)
    if wanted is not None:
        stream.wanted = wanted
    reader = asyncio.get_running_loop().create_task(stream.run())
    try:
        await asyncio.wait_for(stream.connected.wait(), 5)
        yield Reading(stream, dispatcher, handled)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await dispatcher.close()


async def test_a_second_copy_of_an_event_is_dropped_and_a_new_event_is_not(switch: Switch) -> None:
    async with reading(switch) as app:
        # One "1" through the channel and its endpoint, other events in between; then the
        # caller keys "1" again a moment later: a new event (another time), so it counts.
        first, later = dtmf("1", "2026-11-24T10:00:01.000+0000"), dtmf("1", "2026-11-24T10:00:02.500+0000")
        for message in (first, dtmf("2", "2026-11-24T10:00:01.001+0000"), first, later, later):
            switch.to_send.put_nowait(message)

        await app.until(3)

        assert all(isinstance(e, ChannelDtmfReceived) for e in app.handled)
        assert [(e.digit, e.timestamp) for e in app.handled] == [  # type: ignore[attr-defined]
            ("1", "2026-11-24T10:00:01.000+0000"), ("2", "2026-11-24T10:00:01.001+0000"),
            ("1", "2026-11-24T10:00:02.500+0000")]
        assert app.stream.copies_dropped == 2


async def test_an_event_of_a_kind_nobody_handles_never_reaches_the_call(switch: Switch) -> None:
    async with reading(switch, wanted=frozenset({"ChannelDtmfReceived"})) as app:
        varset = json.dumps({"type": "ChannelVarset", "application": "hotline",
                             "timestamp": "2026-11-24T10:00:00.500+0000", "channel": {**CHANNEL, "state": "Up"},
                             "variable": "RTPAUDIOQOS", "value": "ssrc=1"})
        for message in (varset, dtmf("1", "2026-11-24T10:00:01.000+0000")):
            switch.to_send.put_nowait(message)

        await app.until(1)

        assert [e.type for e in app.handled] == ["ChannelDtmfReceived"]
        assert app.stream.unwanted_dropped == 1
