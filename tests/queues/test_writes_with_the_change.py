"""A queue script makes the writes it is given (the call's state saved, the desktops' news
published) with its own change, in the same run, and only if it makes the change: one write to
Redis a transition instead of two (issue 15). Real redis-server."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from queues.engine import CallStateError, QueueEngine
from queues.services import AgentEvents, AnnouncingEngine
from tests.support.clock import MillisClock
from tests.support.queues import COUNTY, LINE, agent, call, ready
from tests.support.redis import redis_commands_counted


async def talking(engine: QueueEngine, call_id: str = "c1", agent_id: str = "a1") -> None:
    await ready(engine, agent(agent_id))
    await engine.enqueue(call(call_id))
    await engine.answered(call_id, agent_id)


async def test_an_answer_stores_what_it_is_given_with_its_change(engine: QueueEngine, redis: Redis,
                                                                  redis_prefix: str) -> None:
    await ready(engine, agent("a1"))
    await engine.enqueue(call("c1"))
    key = f"{redis_prefix}:state-of-c1"
    await engine.answered("c1", "a1", then=[("SET", key, '{"state": "connected"}')])
    assert await redis.get(key) == b'{"state": "connected"}'
    assert (await engine.call("c1") or {})["state"] == "on_call"


async def test_a_refused_change_makes_none_of_the_writes(engine: QueueEngine, redis: Redis, redis_prefix: str) -> None:
    await ready(engine, agent("a1"), agent("a2"))
    await engine.enqueue(call("c1"))  # offered to a1
    key = f"{redis_prefix}:state-of-c1"
    with pytest.raises(CallStateError):
        await engine.answered("c1", "a2", then=[("SET", key, "connected")])  # not a2's call
    with pytest.raises(CallStateError):
        await engine.hung_up("c1", "a1", then=[("SET", key, "ended")])  # ringing, not talking
    assert await redis.get(key) is None


async def test_an_end_whose_wrap_up_is_asked_again_makes_its_writes_once(
    redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    """With a wrap-up per queue the first run only names the call's queue (the engine runs the
    script again with the right wrap-up): the writes go with the run that makes the change."""
    engine = QueueEngine(redis, redis_prefix, clock_ms=clock, wrap_up_s={f"{COUNTY}:{LINE}": 30, "*": 5})
    await talking(engine)
    news = f"{redis_prefix}:news"
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(news)
        await engine.hung_up("c1", "a1", then=[("PUBLISH", news, "ended")])
        heard = []
        async with asyncio.timeout(2):
            while (message := await pubsub.get_message(timeout=0.3)) is not None or not heard:
                if message is not None:
                    heard.append(message["data"])
    assert heard == [b"ended"]
    assert (await engine.agent("a1") or {})["wrap_up_until_ms"] == clock() + 30_000


@pytest.mark.parametrize("write", [("DEL", "k", "v"), ("SET", "k"), ("SET", "k", 1), ("EVAL", "return 1", "0")])
async def test_only_sets_and_publishes_of_strings_are_taken_and_nothing_is_sent_for_others(
    engine: QueueEngine, redis: Redis, write: tuple
) -> None:
    await talking(engine)
    with redis_commands_counted(redis) as sent, pytest.raises(ValueError, match="SET or PUBLISH"):
        await engine.hung_up("c1", "a1", then=[write])
    assert sent == []
    assert (await engine.call("c1") or {})["state"] == "on_call"


async def test_the_desktops_news_of_an_answer_and_an_end_comes_from_the_script_when_the_channel_is_known(
    redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    """The caller names the call's channel: the news is published by the script, with the
    change, and nothing is left to ride on a later command."""
    events = AgentEvents(redis, redis_prefix)
    engine = AnnouncingEngine(redis, redis_prefix, events=events, clock_ms=clock, wrap_up_s=5)
    await ready(engine, agent("a1"))
    await engine.enqueue(call("c1"))
    events._pending.clear()
    async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(events.channel)
        with redis_commands_counted(redis) as sent:
            await engine.answered("c1", "a1", channel_id="ch-c1")
            await engine.hung_up("c1", "a1", channel_id="ch-c1")
        heard = []
        async with asyncio.timeout(2):
            while len(heard) < 4:
                if (message := await pubsub.get_message(timeout=1)) is not None:
                    heard.append(json.loads(message["data"]))
    assert sent == ["pipeline", "pipeline"]  # the scripts only: no read of the call's parties
    assert not events._pending
    assert heard == [
        {"type": "agent.state", "agent_id": "a1", "state": "on_call", "reason": None, "call_id": "c1"},
        {"type": "call.connected", "agent_id": "a1", "call_id": "c1", "channel_id": "ch-c1"},
        {"type": "call.ended", "agent_id": "a1", "call_id": "c1", "channel_id": "ch-c1"},
        {"type": "agent.state", "agent_id": "a1", "state": "wrap_up", "reason": None, "call_id": "c1"},
    ]
