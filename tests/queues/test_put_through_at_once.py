"""A caller whom a free agent takes at once never waited with music: putting them through asks
Asterisk to stop none (a request saved on most calls), while a caller who waited has their
music stopped before the bridge, as always."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.support.calls import agent_ready, press, talking_to
from tests.support.jurisdictions import HANGZHOU

pytestmark = pytest.mark.slow

#: Stopping a caller's music, made to fail: a connect that asked for it would fail with it.
STOP_MUSIC = {"method": "DELETE", "path": r"^/ari/channels/[^/]+/moh$", "status": 500,
              "message": "Internal Server Error"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with running(settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "overflow_after_s": [60.0], "announce_every_s": 60.0, "ring_timeout_s": 5, "wrap_up_s": 0.3,
    })})) as app:
        yield app


async def test_a_caller_put_through_at_once_is_bridged_without_stopping_music_they_never_had(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "1401", HANGZHOU, {"general"}, "PJSIP/1401")
    pbx_sim.faults.inject(**STOP_MUSIC)
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/1401")
    assert not call.on_hold_music and pbx_sim.faults.applied == []
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_a_caller_who_waited_with_music_has_it_stopped_before_the_agent_is_bridged(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for(lambda: call.on_hold_music, what="music on hold")
    await agent_ready(app, "1402", HANGZHOU, {"general"}, "PJSIP/1402")
    await talking_to(pbx_sim, call, "PJSIP/1402")
    assert not call.on_hold_music
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_a_connected_call_is_stored_as_connected_with_its_agent_and_bridge_as_the_queues_say(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    """The queue's "answered" script stores the call's connected state with its own change (one
    write, issue 15): what a restarted process reads agrees with the queue engine."""
    await agent_ready(app, "1403", HANGZHOU, {"general"}, "PJSIP/1403")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    leg = await talking_to(pbx_sim, call, "PJSIP/1403")
    stored = await app.ivr.svc.store.load(call.channel_id)
    assert stored is not None and stored.state == "connected" and stored.agent_id == "1403"
    assert stored.agent_channel == leg and stored.call_bridge == pbx_sim.channel(call.channel_id).bridge_id
    assert (await app.queue_engine.call(stored.call_id) or {})["state"] == "on_call"
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_a_call_that_ended_leaves_no_routes_of_its_agent_leg_or_bridge_behind(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    """The agent's leg and the bridge go to the caller's FIFO while the call lives; after it, the
    dispatcher holds nothing of them (it held two entries a call for the life of the process)."""
    await agent_ready(app, "1404", HANGZHOU, {"general"}, "PJSIP/1404")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/1404")
    assert app.dispatcher.aliases >= 2
    await call.hangup()
    await pbx_sim.wait_idle()
    await app.dispatcher.drain()
    assert app.dispatcher.aliases == 0
