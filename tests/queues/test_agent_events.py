"""The desktops' agent events come from the engine that changes the agents (``AnnouncingEngine``):
what they name of a call is read in the same round trip as the change. Real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from core.lean_redis import lean_from_pool
from devtools.embedded import RedisProcess
from queues.services import AgentEvents, AnnouncingEngine
from tests.support.clock import MillisClock
from tests.support.queues import agent, call, ready
from tests.support.redis import redis_commands_counted


@pytest.fixture
def events(redis: Redis, redis_prefix: str) -> AgentEvents:
    return AgentEvents(redis, redis_prefix)


@pytest.fixture
def announcing(redis: Redis, redis_prefix: str, clock: MillisClock, events: AgentEvents) -> AnnouncingEngine:
    return AnnouncingEngine(redis, redis_prefix, events=events, clock_ms=clock, wrap_up_s=5)


def emitted(events: AgentEvents) -> list[dict]:
    sent = [json.loads(m) for m in events._pending]
    events._pending.clear()
    return sent


@pytest.mark.parametrize("end", ["hung_up", "remove"])
async def test_the_end_of_a_conversation_names_the_callers_channel_with_no_round_trip_of_its_own(
    announcing: AnnouncingEngine, events: AgentEvents, redis: Redis, end: str
) -> None:
    await ready(announcing, agent("a1"))
    for warm in ("c0", "c1"):  # c0 has Redis load the scripts: that is not the round trip counted
        await announcing.enqueue(call(warm))
        await announcing.answered(warm, "a1")
        if warm == "c0":
            await announcing.hung_up("c0", "a1")
            await announcing.remove("c0", "hangup")
            await announcing.set_available("a1")
    emitted(events)
    with redis_commands_counted(redis) as sent:
        if end == "hung_up":
            await announcing.hung_up("c1", "a1")
        else:
            assert await announcing.remove("c1", "hangup")
    assert sent == ["pipeline"]  # the call's parties read ahead of the script, in its pipeline
    assert emitted(events) == [
        {"type": "call.ended", "agent_id": "a1", "call_id": "c1", "channel_id": "ch-c1"},
        {"type": "agent.state", "agent_id": "a1", "state": "wrap_up", "reason": None, "call_id": "c1"},
    ]


async def test_a_wrap_up_ended_when_due_says_available_and_one_not_due_says_nothing(
    announcing: AnnouncingEngine, events: AgentEvents, clock: MillisClock
) -> None:
    await ready(announcing, agent("a1"))
    await announcing.enqueue(call("c1"))
    await announcing.answered("c1", "a1")
    await announcing.hung_up("c1", "a1")
    emitted(events)
    assert await announcing.end_wrap_up("a1") == (False, None)
    assert emitted(events) == []
    clock.advance(5)
    assert await announcing.end_wrap_up("a1") == (True, None)
    assert emitted(events) == [
        {"type": "agent.state", "agent_id": "a1", "state": "available", "reason": None, "call_id": None}]


async def test_an_answer_names_the_channel_and_a_refused_change_names_nothing(
    announcing: AnnouncingEngine, events: AgentEvents
) -> None:
    await ready(announcing, agent("a1"))
    await announcing.enqueue(call("c1"))
    emitted(events)
    await announcing.answered("c1", "a1")
    assert emitted(events)[1] == {"type": "call.connected", "agent_id": "a1", "call_id": "c1", "channel_id": "ch-c1"}
    assert not await announcing.remove("no-such-call", "hangup")  # unknown: no event, no error
    assert emitted(events) == []


async def test_on_the_applications_client_the_events_ride_with_the_next_command_in_order(
    redis_server: RedisProcess, redis_prefix: str, clock: MillisClock
) -> None:
    lean = lean_from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=4))
    events = AgentEvents(lean, redis_prefix)
    engine = AnnouncingEngine(lean, redis_prefix, events=events, clock_ms=clock, wrap_up_s=5)
    try:
        async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(events.channel)
            await ready(engine, agent("a1"))
            await engine.enqueue(call("c1"))
            with redis_commands_counted(lean) as sent:
                await engine.answered("c1", "a1")
                await lean.get(redis_prefix + ":the-next-command")
            assert sent == ["pipeline", "get"]  # no publish of their own: they rode with the get
            assert not events._pending
            heard = []
            async with asyncio.timeout(2):
                while len(heard) < 5:
                    if (message := await pubsub.get_message(timeout=1)) is not None:
                        heard.append(json.loads(message["data"]))
    finally:
        await lean.aclose()
    assert [(e["type"], e.get("state")) for e in heard] == [
        ("agent.state", "break"), ("agent.state", "available"), ("agent.state", "ringing"), ("call.offered", None),
        ("agent.state", "on_call")]


async def test_events_with_no_command_to_follow_go_at_once_when_sent_now(
    redis_server: RedisProcess, redis_prefix: str, clock: MillisClock
) -> None:
    """The wrap-up loop ends a wrap-up and has nothing more to send: its "available" goes in
    that moment, not in a wake-up of its own once the ride's wait is over."""
    lean = lean_from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=4))
    events = AgentEvents(lean, redis_prefix)
    events._publish_soon = lambda channel, text: lean.publish_soon(channel, text, within_s=30)  # a long ride
    try:
        async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(events.channel)
            events.agent_state("a1", "available")
            await events.send_now()
            async with asyncio.timeout(2):  # not 30 s
                while (message := await pubsub.get_message(timeout=1)) is None:
                    pass
    finally:
        await lean.aclose()
    assert json.loads(message["data"])["state"] == "available"
