"""Every command our ARI client sends is one that Asterisk 22 declares, with the
parameters it declares; every answer and event it gets back parses. The ``pbx_sim``
fixture checks each request, response and event against ``../shared/asterisk-ari``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ari.dispatcher import Dispatcher
from ari.errors import AriNotFound, AriUnauthorized, AriUnavailable
from ari.events import EventStream
from ari.models import EndpointStateChange, Event, PlaybackEvent, PlaybackFinished, StasisStart
from ari.rest import AriRest


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = asyncio.Event()

    async def sink(self, key: str, event: Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def wait_for(self, predicate, timeout: float = 5.0) -> Event:  # type: ignore[no-untyped-def]
        async def loop() -> Event:
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def ari(pbx_sim) -> AsyncIterator[tuple[AriRest, Collector, EventStream]]:  # type: ignore[no-untyped-def]
    collector = Collector()
    async with aiohttp.ClientSession() as http:
        rest = AriRest(http, pbx_sim.url, "hotline", "hotline")

        async def nothing() -> None:
            return None

        stream = EventStream(pbx_sim.url, "hotline", "hotline", "hotline", Dispatcher(collector.sink), nothing,
                             initial_backoff_s=0.05)
        task = asyncio.create_task(stream.run())
        await asyncio.wait_for(stream.connected.wait(), 5)
        yield rest, collector, stream
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await rest.close()


async def test_a_call_can_be_driven_with_every_command_the_product_uses(pbx_sim, ari) -> None:  # type: ignore[no-untyped-def]
    rest, events, _ = ari
    assert isinstance(await rest.asterisk_info(), dict)
    assert any(a["name"] == "hotline" for a in await rest.applications())

    call = await pbx_sim.place_call("12315", caller_id="13800138000")
    start = await events.wait_for(lambda e: isinstance(e, StasisStart))
    ch = start.channel.id
    # Our dialplan answers before Stasis(); answering again is harmless.
    assert ch == call.channel_id and start.channel.state == "Up"
    assert [c.id for c in await rest.list_channels()] == [ch]

    await rest.answer(ch)
    pb = await rest.play(ch, ["sound:hotline/main_menu", "sound:hotline/queued"], playback_id="pb-1", lang="zh_CN")
    assert pb.id == "pb-1"
    await rest.stop_playback(pb.id)
    await events.wait_for(lambda e: e.type == "PlaybackFinished" and e.playback.id == "pb-1")
    await rest.set_variable(ch, "HOTLINE_CALL_ID", "abc")
    assert await rest.get_variable(ch, "HOTLINE_CALL_ID") == "abc"
    await rest.start_moh(ch, "hotline")
    assert call.on_hold_music
    await rest.stop_moh(ch)
    await rest.send_dtmf(ch, "1")

    bridge = await rest.create_bridge(name="hotline-test")
    await rest.add_channel(bridge.id, ch)
    await events.wait_for(lambda e: e.type == "ChannelEnteredBridge")
    assert (await rest.list_bridges())[0].channels == (ch,)
    await rest.play_on_bridge(bridge.id, ["sound:hotline/queued"])
    await rest.record_bridge(bridge.id, "rec-test-1")
    await events.wait_for(lambda e: e.type == "RecordingStarted")
    await rest.stop_recording("rec-test-1")
    await events.wait_for(lambda e: e.type == "RecordingFinished")
    wav = await rest.stored_recording_file("rec-test-1")
    assert wav[:4] == b"RIFF"

    agent = await rest.originate("PJSIP/1001", app="hotline", app_args=["agent", "1001"], caller_id="12315",
                                 timeout_s=5)
    agent_start = await events.wait_for(lambda e: isinstance(e, StasisStart) and e.channel.id == agent.id)
    assert agent_start.args == ("agent", "1001")

    media = await rest.external_media(app="hotline", external_host="127.0.0.1:40000", format="slin16")
    await events.wait_for(lambda e: isinstance(e, StasisStart) and e.channel.id == media.id)
    await rest.add_channel(bridge.id, media.id)

    snoop = await rest.snoop(ch, app="hotline", spy="both", app_args=["snoop"])
    await events.wait_for(lambda e: isinstance(e, StasisStart) and e.channel.id == snoop.id)

    await rest.remove_channel(bridge.id, ch)
    await rest.destroy_bridge(bridge.id)
    await rest.continue_in_dialplan(agent.id)
    for other in (media.id, snoop.id):
        await rest.hangup(other)
    await rest.hangup(ch, reason="normal")
    # The last the application hears of a channel it only had in Stasis (a real Asterisk
    # sends ChannelDestroyed only to an application that follows the channel).
    await events.wait_for(lambda e: e.type == "StasisEnd" and e.channel.id == ch)
    with pytest.raises(AriNotFound):
        await rest.answer(ch)


async def test_several_prompts_in_one_play_are_all_heard_in_order_under_one_playback(pbx_sim, ari) -> None:  # type: ignore[no-untyped-def]
    rest, events, _ = ari
    call = await pbx_sim.place_call("12315")
    start = await events.wait_for(lambda e: isinstance(e, StasisStart))
    pb = await rest.play(start.channel.id, ["sound:hotline/welcome", "sound:hotline/main_menu"], playback_id="pb-2")
    await events.wait_for(lambda e: isinstance(e, PlaybackFinished) and e.playback.id == "pb-2")
    playback_events = [e for e in events.events if isinstance(e, PlaybackEvent)]
    assert [(type(e).__name__, e.playback.media_uri) for e in playback_events] == [
        ("PlaybackStarted", "sound:hotline/welcome"), ("PlaybackContinuing", "sound:hotline/welcome"),
        ("PlaybackStarted", "sound:hotline/main_menu"), ("PlaybackFinished", "sound:hotline/main_menu")]
    assert {e.playback.id for e in playback_events} == {pb.id}
    assert {e.route_key() for e in playback_events} == {call.channel_id}  # the call's own FIFO
    assert call.played == ["sound:hotline/welcome", "sound:hotline/main_menu"]


async def test_a_phone_without_a_registered_contact_is_offline_and_cannot_be_called(pbx_sim, ari) -> None:  # type: ignore[no-untyped-def]
    rest, events, _ = ari
    pbx_sim.endpoint("PJSIP/1001")
    assert (await rest.endpoint("PJSIP", "1001")).online
    assert "PJSIP/1001" in [e.name for e in await rest.endpoints()]
    app = await rest.subscribe("hotline", "endpoint:PJSIP/1001")
    assert app["endpoint_ids"] == ["PJSIP/1001"]

    pbx_sim.set_registered("PJSIP/1001", False)
    change = await events.wait_for(lambda e: isinstance(e, EndpointStateChange))
    assert change.endpoint.name == "PJSIP/1001" and not change.endpoint.online
    assert change.route_key() == "endpoint:PJSIP/1001"
    assert (await rest.endpoint("PJSIP", "1001")).state == "offline"
    with pytest.raises(AriUnavailable) as info:
        await rest.originate("PJSIP/1001", app="hotline", app_args=["agent", "1001"])
    assert (info.value.status, info.value.message) == (500, "Allocation failed")

    await rest.unsubscribe("hotline", "endpoint:PJSIP/1001")
    with pytest.raises(AriNotFound):
        await rest.endpoint("SIP", "1001")


async def test_wrong_credentials_are_an_error_that_says_so(pbx_sim) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http, AriRest(http, pbx_sim.url, "hotline", "wrong") as rest:
        with pytest.raises(AriUnauthorized):
            await rest.list_channels()


async def test_the_event_stream_reconnects_and_calls_back_on_every_connect(pbx_sim, ari) -> None:  # type: ignore[no-untyped-def]
    _rest, _events, stream = ari
    assert stream.connections == 1
    await stream.disconnect()
    for _ in range(100):
        if stream.connections == 2 and stream.connected.is_set():
            break
        await asyncio.sleep(0.02)
    assert stream.connections == 2
