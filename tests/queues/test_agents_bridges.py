"""An agent has a bridge of their own, made when they log in (or at their first call) and kept:
their calls join it (two requests to Asterisk a call fewer, issue 15). A bridge that anything
failed with is destroyed and never used again; the idle bridges of agents who logged out, of a
stopped process and of a process before a restart go; a call restored after a restart ends in
its old bridge, which goes with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.settings import Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from queues.engine import AgentState
from queues.kept_bridges import bridge_name
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually, eventually_true
from tests.support.calls import agent_ready, agent_state, press, recording, talking_to
from tests.support.jurisdictions import HANGZHOU

pytestmark = pytest.mark.slow

ADD_CHANNELS = {"method": "POST", "path": r"^/ari/bridges/[^/]+/addChannel$"}


@pytest.fixture
def kept_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "overflow_after_s": [60.0], "announce_every_s": 60.0, "ring_timeout_s": 5, "wrap_up_s": 0.2,
    })})


@pytest.fixture
async def app(kept_settings: Settings) -> AsyncIterator[Application]:
    async with running(kept_settings) as app:
        app.queues.connect_failed_pause_s = 0.2
        yield app


async def a_call_with(pbx_sim: PbxSim, prompts: PromptCatalogue, endpoint: str) -> tuple[SimCall, str]:
    """A caller put through to ``endpoint``; the bridge they talk in."""
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, endpoint, timeout=10)
    return call, str(pbx_sim.channel(call.channel_id).bridge_id)


async def hang_up_and_wrap_up(pbx_sim: PbxSim, app: Application, call: SimCall, agent_id: str) -> None:
    await call.hangup()
    await pbx_sim.wait_idle()

    async def available() -> bool:
        return await agent_state(app, agent_id) == AgentState.AVAILABLE

    await eventually(available)


async def test_an_agents_calls_are_put_through_in_the_bridge_made_when_they_logged_in(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "1501", HANGZHOU, {"general"}, "PJSIP/1501")
    await eventually_true(lambda: _names(pbx_sim, [bridge_name("1501")]))  # made after the login's answer
    [made] = pbx_sim.engine.bridges.values()
    assert made.name == bridge_name("1501") and made.channels == []
    first, bridge = await a_call_with(pbx_sim, prompts, "PJSIP/1501")
    assert bridge == made.id
    await hang_up_and_wrap_up(pbx_sim, app, first, "1501")
    # Between the calls it stays, empty.
    assert list(pbx_sim.engine.bridges) == [bridge] and made.channels == []

    second, again = await a_call_with(pbx_sim, prompts, "PJSIP/1501")
    assert again == bridge and pbx_sim.engine.bridges[bridge] is made
    await hang_up_and_wrap_up(pbx_sim, app, second, "1501")


async def test_a_bridge_that_could_not_be_made_at_the_login_is_made_at_the_agents_call(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    pbx_sim.faults.inject(method="POST", path=r"^/ari/bridges$", status=500, message="Internal Server Error")
    await agent_ready(app, "1509", HANGZHOU, {"general"}, "PJSIP/1509")
    await eventually_true(lambda: pbx_sim.faults.applied)
    assert not pbx_sim.engine.bridges
    call, bridge = await a_call_with(pbx_sim, prompts, "PJSIP/1509")
    assert pbx_sim.engine.bridges[bridge].name == bridge_name("1509")
    await hang_up_and_wrap_up(pbx_sim, app, call, "1509")
    assert list(pbx_sim.engine.bridges) == [bridge]


async def test_a_bridge_a_connect_failed_in_is_destroyed_and_the_agent_gets_a_new_one(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "1502", HANGZHOU, {"general"}, "PJSIP/1502")
    first, bridge = await a_call_with(pbx_sim, prompts, "PJSIP/1502")
    await hang_up_and_wrap_up(pbx_sim, app, first, "1502")

    pbx_sim.faults.inject(**ADD_CHANNELS, status=500, message="Internal Server Error")
    # The failed attempt gives the agent back after a short pause; the caller then reaches them.
    second, again = await a_call_with(pbx_sim, prompts, "PJSIP/1502")
    assert pbx_sim.faults.applied and again != bridge and bridge not in pbx_sim.engine.bridges
    await hang_up_and_wrap_up(pbx_sim, app, second, "1502")
    assert list(pbx_sim.engine.bridges) == [again]


async def test_a_recording_that_could_not_be_stopped_takes_its_bridge_with_it(
    pbx_sim: PbxSim, kept_settings: Settings, prompts: PromptCatalogue, tmp_path: Path
) -> None:
    """Asterisk may still be recording that bridge: the agent's next call must not be in the file."""
    settings = recording(kept_settings, tmp_path / "store")
    async with running(settings) as app:
        await agent_ready(app, "1503", HANGZHOU, {"general"}, "PJSIP/1503")
        call, bridge = await a_call_with(pbx_sim, prompts, "PJSIP/1503")
        pbx_sim.faults.inject(method="POST", path=r"^/ari/recordings/live/[^/]+/stop$", status=500,
                              message="Internal Server Error")
        await hang_up_and_wrap_up(pbx_sim, app, call, "1503")
        assert pbx_sim.faults.applied and bridge not in pbx_sim.engine.bridges


async def test_the_bridges_of_agents_who_logged_out_go_and_a_stopped_process_leaves_none(
    pbx_sim: PbxSim, kept_settings: Settings, prompts: PromptCatalogue
) -> None:
    async with running(kept_settings) as app:
        for agent_id in ("1504", "1505"):
            await agent_ready(app, agent_id, HANGZHOU, {"general"}, f"PJSIP/{agent_id}")
            call, _ = await a_call_with(pbx_sim, prompts, f"PJSIP/{agent_id}")
            await hang_up_and_wrap_up(pbx_sim, app, call, agent_id)
            await app.queue_engine.set_break(agent_id, "meeting")  # the next caller goes to the other
        assert sorted(b.name for b in pbx_sim.engine.bridges.values()) == [bridge_name("1504"), bridge_name("1505")]

        await app.queue_engine.logout("1504")
        await app.queues.tidy_kept_bridges()  # what the queues' loop does every half minute
        assert [b.name for b in pbx_sim.engine.bridges.values()] == [bridge_name("1505")]
    assert not pbx_sim.engine.bridges


async def test_after_a_restart_a_call_goes_on_in_its_bridge_which_goes_with_it_and_idle_ones_are_swept(
    pbx_sim: PbxSim, kept_settings: Settings, prompts: PromptCatalogue
) -> None:
    first = Application(kept_settings)
    await first.start()
    await first.wait_connected()
    await agent_ready(first, "1506", HANGZHOU, {"general"}, "PJSIP/1506")
    call, bridge = await a_call_with(pbx_sim, prompts, "PJSIP/1506")
    # A process that died kept another agent's bridge, idle (its first caller long gone).
    pbx_sim.engine.create_bridge("mixing", "1700000000.1-call-dead00-1", bridge_name("1507"))
    await first.stop()
    assert bridge in pbx_sim.engine.bridges  # a call is in it: it stays

    async with running(kept_settings) as second:
        # The dead process's idle bridge is swept; the logged-in agent gets one of this process's.
        await eventually_true(lambda: _names(pbx_sim, [bridge_name("1506"), bridge_name("1506")]))
        assert call.channel_id in pbx_sim.engine.bridges[bridge].channels
        await call.hangup()
        await pbx_sim.wait_idle()
        # Not one this process made: it goes with the call; the agent's own stays.
        assert bridge not in pbx_sim.engine.bridges
        assert _names(pbx_sim, [bridge_name("1506")])
        assert await agent_state(second, "1506") in (AgentState.WRAP_UP, AgentState.AVAILABLE)


def _names(pbx_sim: PbxSim, names: list[str]) -> bool:
    return sorted(b.name for b in pbx_sim.engine.bridges.values()) == names
