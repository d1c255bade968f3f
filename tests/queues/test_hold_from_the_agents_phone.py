"""An agent puts the call on hold from their own phone (a SIP re-INVITE: ``ChannelHold`` on the
agent's leg, FIELD-NOTES): in a bridge Asterisk plays the caller nothing by itself, so the
application gives the caller music until the agent takes the call back, and tells the desktop
and wallboard. The stand-in's control API plays the agent's phone."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.support.calls import AgentNews, agent_ready, press, record_of, talking_to
from tests.support.jurisdictions import HANGZHOU

pytestmark = pytest.mark.slow

AUTH = {"Authorization": "Basic " + base64.b64encode(b"hotline:hotline").decode()}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with running(settings) as app:
        yield app


async def phone(pbx_sim: PbxSim, method: str, channel_id: str, **query: str) -> None:
    """The stand-in's control API: the phone on ``channel_id`` holds (POST) or resumes (DELETE)."""
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.request(method, f"{pbx_sim.url}/sim/channels/{channel_id}/hold", params=query) as resp:
            assert resp.status == 204, await resp.text()


async def test_an_agent_who_holds_from_their_phone_gives_the_caller_music_until_they_take_the_call_back(
    pbx_sim: PbxSim, app: Application, settings: Settings, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "2101", HANGZHOU, {"general"}, "PJSIP/2101")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    leg = await talking_to(pbx_sim, call, "PJSIP/2101")
    caller = pbx_sim.channel(call.channel_id)
    assert caller is not None and not call.on_hold_music
    record = await record_of(app, call)

    async with AgentNews(app, settings) as news:
        await phone(pbx_sim, "POST", leg, musicclass="default")
        await call.wait_for(lambda: call.on_hold_music, what="music while the agent holds")
        # The configured class, not the one the phone asked for; still in the conversation.
        assert caller.moh_class == settings.ivr.moh_class == "hotline"
        assert caller.bridge_id is not None and pbx_sim.channel(leg).bridge_id == caller.bridge_id

        await phone(pbx_sim, "DELETE", leg)
        await call.wait_for(lambda: not call.on_hold_music, what="the music to stop when the agent is back")
    held = [(m["type"], m["call_id"], m["channel_id"]) for m in news.seen
            if m["agent_id"] == "2101" and m["type"] in ("call.held", "call.resumed")]
    assert held == [("call.held", record.call_id, call.channel_id), ("call.resumed", record.call_id, call.channel_id)]

    # A hold on the caller's own channel (the desktop's hold button: Asterisk's hold indication
    # plays the caller music by itself) is not the agent's phone: no music of ours on top.
    pbx_sim.engine.hold(call.channel_id, True)
    await app.dispatcher.drain()
    assert caller.moh_class is None
    pbx_sim.engine.hold(call.channel_id, False)

    await call.hangup()
    await pbx_sim.wait_idle()


async def test_a_waiting_caller_hears_the_configured_music_class(
    pbx_sim: PbxSim, app: Application, settings: Settings, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("queued"))
    await call.wait_for(lambda: call.on_hold_music, what="music on hold")
    assert pbx_sim.channel(call.channel_id).moh_class == settings.ivr.moh_class
    assert f"moh:{settings.ivr.moh_class}" in call.played
    await call.hangup()
    await pbx_sim.wait_idle()
