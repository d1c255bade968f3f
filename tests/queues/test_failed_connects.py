"""An agent's phone answers but an ARI step of connecting the call fails or gets no answer (as an
overloaded Asterisk does): nothing is left behind in Asterisk, the agent who answered is not
blamed, and the caller keeps their place and reaches the next agent. The real application, queue
engine and redis-server; the stand-in's fault injection (``/sim/faults``) plays the overload."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from queues.engine import Agent, AgentState
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually, eventually_true
from tests.support.calls import AgentNews, agent_state, press, record_of, recording, talking_to
from tests.support.jurisdictions import HANGZHOU

pytestmark = pytest.mark.slow

#: The client gives up on a request after this long (Asterisk's 5 s, shortened for the tests).
REQUEST_TIMEOUT_S = 1.0
#: A request that "hangs" is answered only after the client has given up.
HANG_S = REQUEST_TIMEOUT_S + 0.5

#: Each step of connecting a caller to an agent whose phone answered, as the request it makes.
STEPS: dict[str, dict[str, str]] = {
    "create the bridge": {"method": "POST", "path": r"^/ari/bridges$", "query": r"bridgeId=[^&]*-call-"},
    "stop the prompt": {"method": "DELETE", "path": r"^/ari/playbacks/"},
    "stop the music": {"method": "DELETE", "path": r"^/ari/channels/[^/]+/moh$"},
    # The caller and the agent's leg go in together: one request.
    "add the caller and the agent": {"method": "POST", "path": r"^/ari/bridges/[^/]+/addChannel$",
                                     "query": r"channel=[^&]*-agent-"},
}
#: How the step goes wrong: Asterisk answers an error, or nothing within the client's timeout.
FAILURES: dict[str, dict[str, Any]] = {
    "error": {"status": 500, "message": "Internal Server Error"},
    "timeout": {"status": 503, "delay_s": HANG_S},
}


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "ari": settings.ari.model_copy(update={"request_timeout_s": REQUEST_TIMEOUT_S}),
        # No announcements or overflows in the middle: they would make requests of their own.
        "queues": settings.queues.model_copy(update={
            "overflow_after_s": [60.0], "announce_every_s": 60.0, "ring_timeout_s": 5, "wrap_up_s": 0.3,
        }),
    })


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[Application]:
    async with running(settings) as app:
        app.queues.connect_failed_pause_s = 0.3  # short, so that the tests see the agent come back
        yield app


@pytest.fixture
async def app(fault_settings: Settings) -> AsyncIterator[Application]:
    async with started(fault_settings) as app:
        yield app


async def logged_in(app: Application, agent_id: str, *, here: bool = True) -> None:
    """Logged in, on a break until the test makes them available. ``here``: through this process,
    which makes their bridge then; else as on another process's desktop: it is made at their call."""
    agent = Agent(agent_id, HANGZHOU, frozenset({"general"}), frozenset({"zh-CN"}), f"PJSIP/{agent_id}")
    await (app.queues.login(agent) if here else app.queue_engine.login(agent))


async def queued_caller(pbx_sim: PbxSim, prompts: PromptCatalogue):  # type: ignore[no-untyped-def]
    """A caller waiting in Hangzhou's queue, with music."""
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("queued"))
    await call.wait_for(lambda: call.on_hold_music, what="music on hold")
    return call


def channels_of(pbx_sim: PbxSim, endpoint: str) -> list[str]:
    return [c.id for c in pbx_sim.engine.channels.values() if c.name.startswith(endpoint + "-")]


async def not_blamed_and_back(app: Application, news: AgentNews, agent_id: str) -> None:
    """The agent whose phone answered was never put on break; they come back by themselves."""
    async def available() -> bool:
        return await agent_state(app, agent_id) == AgentState.AVAILABLE

    await eventually(available)
    await asyncio.sleep(0.2)  # the events on their way
    states = news.states_of(agent_id)
    assert ("wrap_up", "connect_failed") in states, states
    assert not [s for s in states if s[0] == "break" and s != ("break", "login")], states


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("step", list(STEPS))
async def test_a_failed_step_of_connecting_leaves_nothing_behind_blames_nobody_and_the_next_agent_gets_the_call(
    pbx_sim: PbxSim, app: Application, fault_settings: Settings, prompts: PromptCatalogue, step: str, failure: str
) -> None:
    # Making the bridge is a step of connecting only for an agent who has none yet.
    here = step != "create the bridge"
    await logged_in(app, "1101", here=here)
    await logged_in(app, "1102", here=here)
    call = await queued_caller(pbx_sim, prompts)
    async with AgentNews(app, fault_settings) as news:
        pbx_sim.faults.inject(**STEPS[step], **FAILURES[failure])
        await app.queues.available("1101")  # offered the waiting call at once; their phone answers
        await app.queues.available("1102")  # free when the first attempt fails

        leg = await talking_to(pbx_sim, call, "PJSIP/1102", timeout=10)
        assert pbx_sim.faults.applied and not pbx_sim.faults.pending
        # Nothing of the failed attempt is left: the first agent's leg and its bridge are gone.
        assert channels_of(pbx_sim, "PJSIP/1101") == []
        bridges = list(pbx_sim.engine.bridges.values())
        assert len(bridges) == 1 and sorted(bridges[0].channels) == sorted([call.channel_id, leg])
        assert not call.on_hold_music

        record = await record_of(app, call)
        assert record.agent_id == "1102" and record.state == "connected" and record.answered_at is not None
        assert await agent_state(app, "1102") == AgentState.ON_CALL
        await not_blamed_and_back(app, news, "1101")

    await call.hangup()
    await pbx_sim.wait_idle(timeout=HANG_S + 2)
    record = await eventually(lambda: _ended(app, call))
    assert record.outcome == "answered" and record.agent_id == "1102"


async def _ended(app: Application, call):  # type: ignore[no-untyped-def]
    record = await record_of(app, call)
    return record if record is not None and record.ended_at is not None else None


async def test_with_nobody_else_free_the_caller_waits_at_the_head_with_music_and_the_same_agent_gets_the_call_back(
    pbx_sim: PbxSim, app: Application, fault_settings: Settings, prompts: PromptCatalogue
) -> None:
    await logged_in(app, "1201")
    call = await queued_caller(pbx_sim, prompts)
    later = await queued_caller(pbx_sim, prompts)  # came after: must stay behind
    pbx_sim.faults.inject(**STEPS["add the caller and the agent"], status=500)
    async with AgentNews(app, fault_settings) as news:
        await app.queues.available("1201")

        async def back_in_queue() -> bool:
            record = await record_of(app, call)
            live = await app.queue_engine.call(record.call_id)
            return live is not None and live["state"] == "waiting" and pbx_sim.faults.applied != []

        await eventually(back_in_queue)
        await call.wait_for(lambda: call.on_hold_music, what="music on hold again")
        assert channels_of(pbx_sim, "PJSIP/1201") == [] and not pbx_sim.engine.bridges
        records = {r.channel_id: r.call_id for r in await app.call_records.all()}
        assert await app.queue_engine.waiting(HANGZHOU, "general") == [records[call.channel_id],
                                                                        records[later.channel_id]]
        # The agent comes back after the short pause and is offered the caller at the head.
        await talking_to(pbx_sim, call, "PJSIP/1201", timeout=5)
        states = news.states_of("1201")
    assert ("wrap_up", "connect_failed") in states and ("break", "no_answer") not in states
    await call.hangup()
    await later.hangup()
    await pbx_sim.wait_idle()


async def test_a_failed_recording_start_does_not_fail_the_call(
    pbx_sim: PbxSim, fault_settings: Settings, prompts: PromptCatalogue, tmp_path: Path
) -> None:
    settings = recording(fault_settings, tmp_path / "store")
    async with started(settings) as app:
        await logged_in(app, "1301")
        await logged_in(app, "1302")
        call = await queued_caller(pbx_sim, prompts)
        pbx_sim.faults.inject(method="POST", path=r"^/ari/bridges/[^/]+/record$", status=500)
        await app.queues.available("1301")
        await app.queues.available("1302")
        leg = await talking_to(pbx_sim, call, "PJSIP/1301")
        await eventually_true(lambda: pbx_sim.faults.applied)
        await asyncio.sleep(0.2)
        assert pbx_sim.channel(leg) is not None and pbx_sim.channel(call.channel_id).bridge_id is not None
        assert await agent_state(app, "1301") == AgentState.ON_CALL
        assert await agent_state(app, "1302") == AgentState.AVAILABLE
        await call.hangup()
        await pbx_sim.wait_idle()


async def test_a_bridge_that_could_not_be_destroyed_is_logged_by_its_id_and_removed_by_the_next_resync(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queues.services")
    await logged_in(app, "1401")
    await logged_in(app, "1402")
    call = await queued_caller(pbx_sim, prompts)
    pbx_sim.faults.inject(**STEPS["add the caller and the agent"], status=500)
    pbx_sim.faults.inject(method="DELETE", path=r"^/ari/bridges/[^/]*-call-", status=500)
    await app.queues.available("1401")
    await app.queues.available("1402")
    leg = await talking_to(pbx_sim, call, "PJSIP/1402", timeout=5)
    current = pbx_sim.channel(call.channel_id).bridge_id
    left = [b for b in pbx_sim.engine.bridges if b != current]
    assert len(left) == 1  # the failed attempt's bridge, still there
    assert any(left[0] in r.getMessage() and "could not be destroyed" in r.getMessage() for r in caplog.records)
    assert channels_of(pbx_sim, "PJSIP/1401") == []

    await app.queues.resync({c.id for c in await app.ari.list_channels()})
    assert left[0] not in pbx_sim.engine.bridges
    assert pbx_sim.left_bridges() == [current]  # the conversation's bridge is untouched
    assert sorted(pbx_sim.engine.bridges[current].channels) == sorted([call.channel_id, leg])
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_a_bridge_asterisk_makes_after_its_creation_timed_out_is_removed_by_the_next_resync(
    pbx_sim: PbxSim, app: Application, fault_settings: Settings, prompts: PromptCatalogue
) -> None:
    await logged_in(app, "1501", here=False)  # their bridges are made at the call
    await logged_in(app, "1502", here=False)
    call = await queued_caller(pbx_sim, prompts)
    # Slow, not lost: Asterisk carries the request out after the client has given up.
    pbx_sim.faults.inject(**STEPS["create the bridge"], delay_s=HANG_S)
    async with AgentNews(app, fault_settings) as news:
        await app.queues.available("1501")
        await app.queues.available("1502")
        await talking_to(pbx_sim, call, "PJSIP/1502", timeout=10)
        current = pbx_sim.channel(call.channel_id).bridge_id
        await call.wait_for(lambda: len(pbx_sim.engine.bridges) == 2, timeout=HANG_S + 1,
                            what="the late bridge")
        [late] = [b for b in pbx_sim.engine.bridges if b != current]
        await app.queues.resync({c.id for c in await app.ari.list_channels()})
        assert late not in pbx_sim.engine.bridges and current in pbx_sim.engine.bridges
        await not_blamed_and_back(app, news, "1501")
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_an_agent_leg_asterisk_makes_after_its_originate_timed_out_is_hung_up_and_the_agent_not_blamed(
    pbx_sim: PbxSim, app: Application, fault_settings: Settings, prompts: PromptCatalogue
) -> None:
    await logged_in(app, "1601")
    await logged_in(app, "1602")
    call = await queued_caller(pbx_sim, prompts)
    pbx_sim.faults.inject(method="POST", path=r"^/ari/channels$", query=r"endpoint=PJSIP/1601", delay_s=HANG_S)
    async with AgentNews(app, fault_settings) as news:
        await app.queues.available("1601")
        await app.queues.available("1602")
        await talking_to(pbx_sim, call, "PJSIP/1602", timeout=10)
        # The late leg rings, the phone answers, it enters Stasis: and is hung up at once.
        await call.wait_for(lambda: pbx_sim.faults.applied != [], what="the late originate")
        await asyncio.sleep(HANG_S)
        await call.wait_for(lambda: channels_of(pbx_sim, "PJSIP/1601") == [], timeout=3,
                            what="the late agent leg hung up")
        await not_blamed_and_back(app, news, "1601")
    assert pbx_sim.left_bridges() == [pbx_sim.channel(call.channel_id).bridge_id]
    await call.hangup()
    await pbx_sim.wait_idle()


async def test_the_fault_injection_refuses_what_makes_no_sense(pbx_sim: PbxSim) -> None:
    with pytest.raises(ValueError, match="regular expression"):
        pbx_sim.faults.inject("(", status=500)
    with pytest.raises(ValueError, match="status"):
        pbx_sim.faults.inject("x", status=200)
    with pytest.raises(ValueError, match="give a status"):
        pbx_sim.faults.inject("x")
    assert re.compile(STEPS["add the caller and the agent"]["query"]).search("channel=1.2-agent-ab-1")
