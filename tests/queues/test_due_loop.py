"""The queue service's due loop (``QueueService._end_what_is_due``): one look at Redis per
wake-up ends the wrap-ups that are due and says when the next one is. The real queue engine on
a real redis-server, on a clock the tests move by hand."""

from __future__ import annotations

import json

import pytest

from core.settings import QueueSettings
from queues.engine import AgentState, QueueEngine, UnknownAgentError
from queues.services import DUE_AGAIN_S, DUE_LOOK_MAX_S, DUE_LOOK_WRAP_UPS, DUE_MARGIN_S, QueueService
from tests.support.clock import MillisClock
from tests.support.queues import COUNTY, LINE, QUALITY, agent, call, ready, state
from tests.support.redis import redis_round_trips

WRAP_UP_S = 10.0  # the engine fixture's (the default)


@pytest.fixture
def service(engine: QueueEngine) -> QueueService:
    """The service with only what the due loop uses: no call waits, so nothing is offered."""
    return QueueService(engine, None, None, None, None, "hotline", QueueSettings())  # type: ignore[arg-type]


async def in_wrap_up(engine: QueueEngine, clock: MillisClock, *agent_ids: str) -> None:
    """Each agent talked to a caller and hung up, in this order, 1 ms apart: in wrap-up."""
    for agent_id in agent_ids:
        await ready(engine, agent(agent_id))
        assert await engine.enqueue(call(f"c-{agent_id}")) is not None
        await engine.answered(f"c-{agent_id}", agent_id)
        await engine.hung_up(f"c-{agent_id}", agent_id)
        clock.advance(0.001)


async def test_a_wake_up_for_a_due_wrap_up_reads_redis_once_and_sleeps_until_the_next_one(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    await in_wrap_up(engine, clock, "a1")
    clock.advance(1.5)
    await in_wrap_up(engine, clock, "a2")  # ends 1.5 s after a1's
    clock.advance(WRAP_UP_S - 1.5)
    with redis_round_trips(engine.redis) as trips:
        wait = await service._end_what_is_due()
    # a1's end and the look (two reads, no script: cheaper for Redis) in one pipeline: this
    # process started that wrap-up and knew when it ends.
    assert trips == [["evalsha", "zrange", "zrange"]]
    assert await state(engine, "a1") == AgentState.AVAILABLE
    assert await state(engine, "a2") == AgentState.WRAP_UP
    assert wait == pytest.approx(1.5, abs=0.0025)  # no look in between: nothing is due before a2


async def test_with_nothing_due_the_loop_sleeps_until_the_first_due_or_at_most_the_longest_look(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    assert await service._end_what_is_due() == DUE_LOOK_MAX_S
    await in_wrap_up(engine, clock, "a1")
    assert await service._end_what_is_due() == DUE_LOOK_MAX_S  # 10 s away: look before, now and then
    clock.advance(WRAP_UP_S - 0.5)
    assert await service._end_what_is_due() == pytest.approx(0.5, abs=0.0015)


async def test_more_wrap_ups_due_than_one_look_reads_are_all_ended(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    agent_ids = [f"a{i}" for i in range(DUE_LOOK_WRAP_UPS + 2)]
    await in_wrap_up(engine, clock, *agent_ids)
    engine.wrap_ups_due(clock() + 60_000)  # started by another process: found by looking only
    clock.advance(WRAP_UP_S)
    assert await service._end_what_is_due() == DUE_AGAIN_S  # all it read were due: more may be
    assert [await state(engine, a) for a in agent_ids[-2:]] == [AgentState.WRAP_UP] * 2
    assert await service._end_what_is_due() == DUE_LOOK_MAX_S
    assert {await state(engine, a) for a in agent_ids} == {AgentState.AVAILABLE}
    assert await engine.wrap_ups_ahead(1, first_of=service._retry_key()) == ([], None)


async def test_an_entry_that_stays_due_does_not_make_the_loop_look_again_soon(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    # Available (on another line than a2's caller), yet listed in wrap-up: set_available leaves it.
    await ready(engine, agent("a1", lines=(QUALITY,)))
    stuck = clock() - 1
    await engine.redis.zadd(engine.key("wrapup"), {"a1": stuck})
    await in_wrap_up(engine, clock, "a2")
    clock.advance(WRAP_UP_S - 0.5)
    for _ in range(2):
        assert await service._end_what_is_due() == pytest.approx(0.5, abs=0.0015)  # a2's, not DUE_AGAIN_S
        assert (await engine.wrap_ups_ahead(1, first_of=service._retry_key()))[0] == [("a1", stuck)]


async def test_one_wrap_up_that_cannot_end_does_not_keep_the_others_and_the_failure_is_raised(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    await engine.redis.zadd(engine.key("wrapup"), {"gone": clock() - 1})  # its agent's hash is gone
    await in_wrap_up(engine, clock, "a1")
    clock.advance(WRAP_UP_S)
    with pytest.raises(UnknownAgentError):
        await service._end_what_is_due()  # the loop logs it and looks again a second later
    assert await state(engine, "a1") == AgentState.AVAILABLE


async def test_a_due_callback_retry_is_queued_again_and_the_loop_looks_again_soon(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    retry = {"call_id": "cb1", "channel_id": "ch-cb1", "jurisdiction": COUNTY, "line": LINE,
             "language": "zh-CN", "enqueued_at_ms": clock() - 60_000}
    await engine.redis.zadd(service._retry_key(), {json.dumps(retry): clock() + 1000})
    assert await service._end_what_is_due() == pytest.approx(1.0 + DUE_MARGIN_S)
    assert await engine.call("cb1") is None
    clock.advance(1)
    assert await service._end_what_is_due() == DUE_AGAIN_S  # only the first retry was read
    assert (await engine.call("cb1"))["state"] == "waiting"  # type: ignore[index]


async def test_the_look_for_a_known_due_time_finds_it_due_even_when_its_timer_fires_a_moment_early(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    """The clock counts whole milliseconds and timers may fire a little early: a look right on
    time found the wrap-up not yet due and slept again for under a millisecond."""
    await in_wrap_up(engine, clock, "a1")
    engine.wrap_ups_due(clock() + 60_000)  # as if another process had started it: found by the look
    clock.advance(WRAP_UP_S - 1)
    wait = await service._end_what_is_due()
    assert wait == pytest.approx(1 - 0.001 + DUE_MARGIN_S)  # it ends 1 s from now (started 1 ms ago)
    clock.advance(wait - 0.001)
    assert await service._end_what_is_due() == DUE_LOOK_MAX_S
    assert await state(engine, "a1") == AgentState.AVAILABLE


async def test_a_wrap_up_another_process_started_is_ended_after_the_look_that_found_it(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    await in_wrap_up(engine, clock, "a1")
    engine.wrap_ups_due(clock() + 60_000)  # as if another process had started it: not known here
    clock.advance(WRAP_UP_S)
    with redis_round_trips(engine.redis) as trips:
        assert await service._end_what_is_due() == DUE_LOOK_MAX_S
    assert trips == [["zrange", "zrange"], ["evalsha"]]  # the look, then the end of what it found
    assert await state(engine, "a1") == AgentState.AVAILABLE


async def test_an_agent_who_chose_a_break_during_their_wrap_up_stays_on_it_when_it_was_due(
    engine: QueueEngine, clock: MillisClock, service: QueueService
) -> None:
    await in_wrap_up(engine, clock, "a1", "a2")
    await engine.set_break("a1", "lunch")
    clock.advance(WRAP_UP_S)
    await service._end_what_is_due()
    assert await state(engine, "a1") == AgentState.BREAK
    assert await state(engine, "a2") == AgentState.AVAILABLE
