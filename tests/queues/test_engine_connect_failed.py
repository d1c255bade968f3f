"""The queue engine when an agent's phone answered but the call could not be put through to them
(``connect_failed``): the agent is not blamed, the caller keeps their place. Real redis-server."""

from __future__ import annotations

import pytest

from queues.engine import AgentState, CallStateError, QueueEngine
from tests.support.clock import MillisClock
from tests.support.queues import COUNTY, LINE, agent, call, ready
from tests.support.redis import redis_commands_counted


async def test_the_agent_pauses_briefly_keeping_their_idle_place_and_the_call_goes_back_to_the_head(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"))
    idle_since = (await engine.agent("a1"))["idle_since_ms"]  # type: ignore[index]
    assert await engine.enqueue(call("first")) is not None
    clock.advance(5)
    await engine.enqueue(call("second"))
    clock.advance(1)

    assert await engine.connect_failed("first", "a1", 3.0) is None  # nobody else free
    info = await engine.agent("a1")
    assert info is not None
    assert (info["state"], info["reason"], info["call_id"]) == (AgentState.WRAP_UP, "connect_failed", None)
    assert await engine.waiting(COUNTY, LINE) == ["first", "second"]

    clock.advance(2.9)
    assert await engine.wrap_up_due() == []
    clock.advance(0.2)
    assert await engine.wrap_up_due() == ["a1"]
    offer = await engine.set_available("a1")  # back by themselves: offered the caller at the head
    assert offer is not None and offer.call_id == "first"
    assert (await engine.agent("a1"))["idle_since_ms"] == idle_since  # type: ignore[index]


async def test_the_call_is_offered_at_once_to_another_free_agent(engine: QueueEngine, clock: MillisClock) -> None:
    await ready(engine, agent("a1"))
    assert await engine.enqueue(call("c1")) is not None
    clock.advance(1)
    await ready(engine, agent("a2"))
    offer = await engine.connect_failed("c1", "a1", 3.0)
    assert offer is not None and (offer.call_id, offer.agent_id) == ("c1", "a2")
    assert (await engine.agent("a1"))["state"] == AgentState.WRAP_UP  # type: ignore[index]


async def test_connect_failed_is_refused_for_a_call_not_ringing_at_that_agent(engine: QueueEngine) -> None:
    await ready(engine, agent("a1"))
    assert await engine.enqueue(call("c1")) is not None
    await engine.answered("c1", "a1")
    with pytest.raises(CallStateError, match="is on_call"):
        await engine.connect_failed("c1", "a1", 3.0)


async def test_the_wrap_ups_in_the_order_they_end_and_the_first_retry_are_read_in_one_round_trip(
    engine: QueueEngine, clock: MillisClock
) -> None:
    """What the due loop reads when it wakes: the wrap-ups that are due and when the next one
    is, so that the service sleeps until then."""
    empty = engine.key("no-such-set")
    assert await engine.wrap_ups_ahead(64, first_of=empty) == ([], None)
    await ready(engine, agent("a1"), agent("a2"))
    await engine.enqueue(call("first"))
    await engine.enqueue(call("second"))
    clock.advance(1)
    await engine.connect_failed("first", "a1", 3.0)
    await engine.connect_failed("second", "a2", 2.0)
    with redis_commands_counted(engine.redis) as sent:
        assert await engine.wrap_ups_ahead(64, first_of=empty) == ([("a2", clock() + 2000), ("a1", clock() + 3000)],
                                                                   None)
        assert await engine.wrap_ups_ahead(1, first_of=engine.key("wrapup")) == ([("a2", clock() + 2000)],
                                                                                 clock() + 2000)
    assert sent == ["pipeline", "pipeline"]
