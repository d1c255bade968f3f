"""Calls through the stand-in reach the agents of their jurisdiction and line, climb the levels
when nobody there can take them, and leave nothing behind: the real queue engine on a real
redis-server, the real call flows, agents' phones simulated by the stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest

import queues.services
from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from queues.engine import AgentState
from queues.figures import mark_watched
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually
from tests.support.calls import (
    agent_on_break,
    agent_ready,
    agent_state,
    ended_record,
    press,
    record_of,
    requests_to,
    talking_to,
)
from tests.support.jurisdictions import HANGZHOU, ZHEJIANG

pytestmark = pytest.mark.slow


@pytest.fixture
def queue_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"queues": settings.queues.model_copy(update={
        "overflow_after_s": [0.6], "announce_every_s": 0.4, "ring_timeout_s": 1, "wrap_up_s": 0.3,
    })})


@pytest.fixture
async def app(queue_settings: Settings) -> AsyncIterator[Application]:
    async with running(queue_settings) as app:
        yield app


async def test_a_caller_from_hangzhou_who_dials_12331_reaches_a_hangzhou_food_and_drug_agent(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    pbx_sim.endpoint("PJSIP/1001", answer_after_s=0.05)
    await agent_ready(app, "1001", HANGZHOU, {"food_drug"}, "PJSIP/1001")
    await agent_ready(app, "1002", HANGZHOU, {"price"}, "PJSIP/1002")  # other line: never offered
    call = await pbx_sim.place_call("057112331", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/1001")
    assert not call.on_hold_music

    record = await record_of(app, call)
    assert record.jurisdiction == HANGZHOU and record.agent_id == "1001"
    assert record.answered_at is not None and record.state == "connected"
    assert (await app.queue_engine.agent("1001"))["state"] == AgentState.ON_CALL
    assert (await app.queue_engine.agent("1002"))["state"] == AgentState.AVAILABLE

    await call.hangup()
    await pbx_sim.wait_idle()  # the agent's leg and the bridge are gone with the caller
    record = await record_of(app, call)
    assert record.outcome == "answered" and record.ended_at is not None
    async def available_again() -> bool:  # after the wrap-up
        return await agent_state(app, "1001") == AgentState.AVAILABLE

    await eventually(available_again)


async def test_with_nobody_logged_in_at_the_city_the_call_goes_straight_to_the_province(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "2001", ZHEJIANG, {"general"}, "PJSIP/2001")
    call = await pbx_sim.place_call("057112315", caller_id="057187654321")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/2001")
    record = await record_of(app, call)
    assert record.jurisdiction == HANGZHOU and record.agent_id == "2001"
    await call.hangup()


async def test_a_call_waiting_at_a_staffed_city_is_offered_to_the_province_after_the_overflow_time(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    # The city has an agent, but on a break: the call waits there first, then climbs.
    await agent_on_break(app, "3001", HANGZHOU, "general", "lunch")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("queued"))
    await asyncio.sleep(0.1)
    assert call.on_hold_music
    await agent_ready(app, "3002", ZHEJIANG, {"general"}, "PJSIP/3002")
    assert pbx_sim.channel(call.channel_id).bridge_id is None  # not yet: still the city's call
    await talking_to(pbx_sim, call, "PJSIP/3002", timeout=5)
    await call.hangup()


async def test_an_agent_who_does_not_answer_is_put_on_break_and_the_next_agent_gets_the_call(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    pbx_sim.endpoint("PJSIP/4001", mode="no_answer")
    await agent_ready(app, "4001", HANGZHOU, {"general"}, "PJSIP/4001")  # idle longest: offered first
    await asyncio.sleep(0.01)
    await agent_ready(app, "4002", HANGZHOU, {"general"}, "PJSIP/4002")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/4002", timeout=6)
    first = await app.queue_engine.agent("4001")
    assert first["state"] == AgentState.BREAK and first["reason"] == "no_answer"
    await call.hangup()


async def test_when_the_agent_hangs_up_the_caller_is_hung_up_and_the_call_is_answered(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "5001", HANGZHOU, {"quality"}, "PJSIP/5001")
    call = await pbx_sim.place_call("057112365", caller_id="13800138000")
    await press(call, prompts)
    leg = await talking_to(pbx_sim, call, "PJSIP/5001")
    pbx_sim.engine.hangup(pbx_sim.channel(leg), 16)  # the agent puts the phone down
    await call.wait_ended()
    await pbx_sim.wait_idle()
    record = await eventually(lambda: ended_record(app, call))
    assert record.outcome == "answered" and record.agent_id == "5001"


@pytest.fixture
async def app_looking_hourly(queue_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Application]:
    """The application, its due loop looking at Redis on its own only once an hour."""
    monkeypatch.setattr(queues.services, "DUE_LOOK_MAX_S", 3600.0)
    async with running(queue_settings) as app:
        yield app


async def test_an_agents_wrap_up_ends_when_due_without_the_loop_looking_at_redis_meanwhile(
    pbx_sim: PbxSim, app_looking_hourly: Application, prompts: PromptCatalogue
) -> None:
    """The loop that ends wrap-ups looks at Redis only when something is due, or now and then
    for what another process left: the wrap-up this process starts wakes it."""
    app = app_looking_hourly
    await agent_ready(app, "5002", HANGZHOU, {"quality"}, "PJSIP/5002")
    call = await pbx_sim.place_call("057112365", caller_id="13800138000")
    await press(call, prompts)
    await talking_to(pbx_sim, call, "PJSIP/5002")
    await call.hangup()
    async def available() -> bool:
        return await agent_state(app, "5002") == AgentState.AVAILABLE

    await eventually(lambda: _in_wrap_up(app, "5002"))
    await eventually(available)  # 0.3 s later, not at the loop's next look an hour away


async def _in_wrap_up(app: Application, agent_id: str) -> bool:
    return await agent_state(app, agent_id) == AgentState.WRAP_UP


async def test_a_waiting_caller_hears_their_position_and_leaves_every_queue_on_hanging_up(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_on_break(app, "6001", HANGZHOU, "price", "meeting")
    call = await pbx_sim.place_call("057112358", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("callers_ahead_before"), timeout=3)
    await call.wait_for_playback("number:0")
    record = await record_of(app, call)
    assert await app.queue_engine.call(record.call_id) is not None
    await call.hangup()
    await pbx_sim.wait_idle()

    async def left_the_queues() -> bool:
        return await app.queue_engine.call(record.call_id) is None

    await eventually(left_the_queues)
    assert await app.queue_engine.live_calls() == []


async def test_a_queued_caller_who_hangs_up_while_the_app_is_down_leaves_the_queue_on_restart(
    pbx_sim: PbxSim, queue_settings: Settings, prompts: PromptCatalogue
) -> None:
    first = Application(queue_settings)
    await first.start()
    await first.wait_connected()
    await agent_on_break(first, "7001", HANGZHOU, "general", "training")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("queued"))
    await asyncio.sleep(0.1)
    assert len(await first.queue_engine.live_calls()) == 1
    await first.stop()
    await call.hangup()  # while nobody is listening

    second = Application(queue_settings)
    await second.start()
    try:
        await second.wait_connected()

        async def queues_empty() -> bool:
            return not await second.queue_engine.live_calls()

        await eventually(queues_empty)
        # The agent who comes back from training is not rung for the caller who left.
        assert await second.queues.available("7001") is None
    finally:
        await second.stop()


async def test_an_open_wallboard_receives_live_figures_of_the_waiting_calls(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue, queue_settings: Settings
) -> None:
    queues = f"{queue_settings.redis.prefix}:queues"
    await mark_watched(app.redis, queues)  # what an open wallboard does; none open, none computed
    pubsub = app.redis.pubsub()
    await pubsub.subscribe(f"{queues}:figures")
    try:
        await agent_on_break(app, "8001", HANGZHOU, "general", "lunch")
        call = await pbx_sim.place_call("057112315", caller_id="13800138000")
        await press(call, prompts)
        await call.wait_for_playback(prompts.media("queued"))
        figures = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is None:
                continue
            figures = json.loads(message["data"])
            city = [q for q in figures["queues"] if q["jurisdiction"] == HANGZHOU and q["line"] == "general"]
            if city and city[0]["waiting"] == 1:
                break
        assert figures is not None and city and city[0]["waiting"] == 1
        await call.hangup()
    finally:
        await pubsub.aclose()


async def test_a_caller_whose_number_says_nothing_keys_the_area_code_and_reaches_that_city(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "9001", HANGZHOU, {"general"}, "PJSIP/9001")
    call = await pbx_sim.place_call("12315", caller_id="87654321")  # a local number, no area code
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("ask_city"))
    call.send_dtmf("0571#")
    await talking_to(pbx_sim, call, "PJSIP/9001")
    record = await record_of(app, call)
    assert record.jurisdiction == HANGZHOU
    assert record.menu_path == ["main_menu:1:complaint", "ask_city:keyed:found"]
    await call.hangup()


async def test_a_caller_who_gives_no_city_is_queued_nationally_after_two_tries(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_ready(app, "9002", "000000", {"general"}, "PJSIP/9002")
    call = await pbx_sim.place_call("12315", caller_id="87654322")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("ask_city"))
    call.send_dtmf("9999#")  # no such area code
    await call.wait_for_playback(prompts.media("no_match"))
    await talking_to(pbx_sim, call, "PJSIP/9002", timeout=5)  # second try: silence
    record = await record_of(app, call)
    assert record.jurisdiction == "000000"


async def test_an_agent_left_alone_by_a_caller_who_hung_up_while_the_app_was_down_is_released(
    pbx_sim: PbxSim, queue_settings: Settings, prompts: PromptCatalogue
) -> None:
    first = Application(queue_settings)
    await first.start()
    await first.wait_connected()
    await agent_ready(first, "7101", HANGZHOU, {"general"}, "PJSIP/7101")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    leg = await talking_to(pbx_sim, call, "PJSIP/7101")
    await first.stop()
    await call.hangup()  # the agent is now alone in the bridge, and nobody is listening
    assert pbx_sim.channel(leg) is not None

    second = Application(queue_settings)
    await second.start()
    try:
        await second.wait_connected()
        await pbx_sim.wait_idle(timeout=5)  # the agent's leg hung up, the bridge destroyed
        async def released() -> bool:
            return await agent_state(second, "7101") == AgentState.AVAILABLE

        await eventually(released)
    finally:
        await second.stop()


async def test_a_caller_who_gave_up_waiting_and_calls_back_soon_gets_their_place_back(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_on_break(app, "9101", HANGZHOU, "general", "meeting")
    first = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(first, prompts)
    await first.wait_for_playback(prompts.media("queued"))
    await first.hangup()  # gives up
    other = await pbx_sim.place_call("057112315", caller_id="13900139000")
    await press(other, prompts)
    await other.wait_for_playback(prompts.media("queued"))
    again = await pbx_sim.place_call("057112315", caller_id="13800138000")  # calls back
    await press(again, prompts)
    await again.wait_for_playback(prompts.media("queued"))
    await app.dispatcher.drain()
    await app.records.flush()
    waiting = await app.queue_engine.waiting(HANGZHOU, "general")
    records = {r.channel_id: r.call_id for r in await app.call_records.all()}
    assert waiting == [records[again.channel_id], records[other.channel_id]]
    await other.hangup()
    await again.hangup()


async def test_after_hours_a_caller_hears_the_after_hours_message_and_is_not_queued(
    pbx_sim: PbxSim, queue_settings: Settings, prompts: PromptCatalogue
) -> None:
    closed = queue_settings.queues.model_copy(update={"hours": queue_settings.queues.hours.model_copy(
        update={"days": []})})
    app = Application(queue_settings.model_copy(update={"queues": closed}))
    await app.start()
    try:
        await app.wait_connected()
        call = await pbx_sim.place_call("057112315", caller_id="13800138000")
        await press(call, prompts)
        await call.wait_for_playback(prompts.media("after_hours"))
        await call.wait_ended(timeout=5)  # the line is closed after the goodbye
        await pbx_sim.wait_idle()
        assert await app.queue_engine.live_calls() == []
        record = await eventually(lambda: ended_record(app, call))
        assert record.outcome == "after_hours"
    finally:
        await app.stop()


async def test_a_waiting_call_survives_a_restart_of_redis_and_still_reaches_an_agent(
    pbx_sim: PbxSim, queue_settings: Settings, prompts: PromptCatalogue, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from devtools.embedded import RedisProcess

    redis = RedisProcess(tmp_path / "redis")  # its own server: this test restarts it
    redis.start()
    settings = queue_settings.model_copy(update={"redis": queue_settings.redis.model_copy(update={"url": redis.url})})
    app = Application(settings)
    try:
        await app.start()
        await app.wait_connected()
        await agent_on_break(app, "9201", HANGZHOU, "general")
        call = await pbx_sim.place_call("057112315", caller_id="13800138000")
        await press(call, prompts)
        await call.wait_for_playback(prompts.media("queued"))
        await asyncio.sleep(0.2)

        redis.stop()  # a clean restart: the append-only file has everything
        redis.start()

        async def back() -> object:
            try:
                return await app.queue_engine.live_calls()
            except Exception:  # noqa: BLE001 - the first commands after the restart may fail
                return None

        assert len(await eventually(back)) == 1
        await app.queues.available("9201")
        await talking_to(pbx_sim, call, "PJSIP/9201")
        await call.hangup()
    finally:
        await app.stop()
        redis.stop()


async def test_a_caller_who_asks_to_be_called_back_keeps_their_place_and_is_called_when_an_agent_is_free(
    pbx_sim: PbxSim, app: Application, prompts: PromptCatalogue
) -> None:
    await agent_on_break(app, "9301", HANGZHOU, "general")
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await press(call, prompts)
    await call.wait_for_playback(prompts.media("callback_offer"), timeout=3)
    call.send_dtmf("1")
    await call.wait_for_playback(prompts.media("callback_booked"))
    await call.wait_ended()  # the caller's line is closed; their place is not
    await app.dispatcher.drain()
    assert len(await app.queue_engine.live_calls()) == 1

    await app.queues.available("9301")

    def called_back() -> str | None:  # the stand-in's channel to the caller's own number
        return next((c.id for c in pbx_sim.engine.channels.values()
                     if c.name.startswith("PJSIP/13800138000@carrier-")), None)

    leg = str(await call.wait_for(called_back, timeout=5, what="the caller to be called back"))
    await call.wait_for(lambda: (ch := pbx_sim.channel(leg)) is not None and ch.bridge_id is not None, timeout=5,
                        what="the called-back caller to be bridged with the agent")
    bridge = pbx_sim.engine.bridges[pbx_sim.channel(leg).bridge_id]
    assert any(pbx_sim.channel(c).name.startswith("PJSIP/9301-") for c in bridge.channels if c != leg)
    assert (await app.queue_engine.agent("9301"))["state"] == AgentState.ON_CALL
    pbx_sim.engine.hangup(pbx_sim.channel(leg), 16)
    await pbx_sim.wait_idle()


async def test_a_caller_who_does_not_answer_the_callback_is_tried_again_then_given_up_and_the_agent_is_freed(
    pbx_sim: PbxSim, queue_settings: Settings, prompts: PromptCatalogue
) -> None:
    settings = queue_settings.model_copy(update={"queues": queue_settings.queues.model_copy(
        update={"callback_attempts": 2, "callback_retry_s": 0.2})})
    pbx_sim.endpoint("PJSIP/13800138009@carrier", mode="no_answer")
    # Every channel the application originates to call the caller back (``<call>-cb-<attempt>``),
    # seen by the stand-in's contract checker.
    originated = requests_to(pbx_sim, "POST", "/channels")

    def callbacks() -> list[str]:
        return [attempt.group(1) for query in originated
                if (attempt := re.search(r"-cb-(\d+)$", query.get("channelId", "")))]

    app = Application(settings)
    await app.start()
    try:
        await app.wait_connected()
        await agent_on_break(app, "9401", HANGZHOU, "general")
        call = await pbx_sim.place_call("057112315", caller_id="13800138009")
        await press(call, prompts)
        await call.wait_for_playback(prompts.media("callback_offer"), timeout=3)
        call.send_dtmf("1")
        await call.wait_ended()
        await app.queues.available("9401")

        async def given_up() -> bool:
            # Between the attempts the call waits in Redis, not among the live calls.
            return len(callbacks()) == 2 and not await app.queue_engine.live_calls()

        await eventually(given_up, timeout=10)  # two rings of 2 s each, 0.2 s apart

        async def agent_free() -> bool:
            return await agent_state(app, "9401") == AgentState.AVAILABLE

        await eventually(agent_free)
        assert callbacks() == ["1", "2"]  # tried again once, then given up: no third ring
    finally:
        await app.stop()
