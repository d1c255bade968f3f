"""The queue engine on a real redis-server: matching, ordering, overflow, ring-no-answer,
wrap-up, two processes sharing Redis, and state surviving a restart of either."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devtools.embedded import RedisProcess
from queues.engine import (
    Agent,
    AgentState,
    AgentStateError,
    CallStateError,
    Offer,
    QueueEngine,
    UnknownAgentError,
    UnknownCallError,
    WaitingCall,
)
from tests.support.clock import MillisClock
from tests.support.queues import CITY, COUNTY, LINE, OTHER_COUNTY, PROVINCE, QUALITY, agent, call, ready, state


async def test_a_call_is_offered_at_once_to_a_free_matching_agent(engine: QueueEngine) -> None:
    await ready(engine, agent("a1"))
    offer = await engine.enqueue(call("c1"))
    assert offer == Offer("c1", "ch-c1", "a1", "PJSIP/a1", COUNTY, LINE)
    assert await state(engine, "a1") is AgentState.RINGING
    assert await engine.waiting(COUNTY, LINE) == []
    info = await engine.call("c1")
    assert info is not None and info["state"] == "ringing" and info["agent_id"] == "a1"


async def test_a_logged_in_agent_takes_no_call_until_available(engine: QueueEngine) -> None:
    await engine.login(agent("a1"))
    assert await state(engine, "a1") is AgentState.BREAK
    assert await engine.enqueue(call("c1")) is None
    offer = await engine.set_available("a1")
    assert offer is not None and offer.call_id == "c1"


async def test_the_agent_idle_longest_gets_the_next_call(engine: QueueEngine, clock: MillisClock) -> None:
    for name in ("a1", "a2", "a3"):
        await ready(engine, agent(name))
        clock.advance(1)
    first = await engine.enqueue(call("c1"))
    second = await engine.enqueue(call("c2"))
    assert first is not None and first.agent_id == "a1"
    assert second is not None and second.agent_id == "a2"
    # a1 finishes and becomes available again: now a3 has been idle longest.
    await engine.answered("c1", "a1")
    await engine.hung_up("c1", "a1")
    assert await engine.set_available("a1") is None
    third = await engine.enqueue(call("c3"))
    assert third is not None and third.agent_id == "a3"


async def test_calls_are_served_by_priority_then_by_wait_time(engine: QueueEngine, clock: MillisClock) -> None:
    await engine.enqueue(call("old"))
    clock.advance(5)
    await engine.enqueue(call("young"))
    clock.advance(5)
    await engine.enqueue(call("urgent", priority=5))
    assert await engine.waiting(COUNTY, LINE) == ["urgent", "old", "young"]
    await engine.login(agent("a1"))
    offer = await engine.set_available("a1")
    assert offer is not None and offer.call_id == "urgent"


async def test_an_agent_takes_only_calls_of_their_lines_languages_and_home_queue(engine: QueueEngine) -> None:
    await engine.enqueue(call("other-line", line=QUALITY))
    await engine.enqueue(call("other-language", language="bo"))
    await engine.enqueue(call("other-county", jurisdiction=OTHER_COUNTY))
    await engine.login(agent("a1"))
    assert await engine.set_available("a1") is None
    # The agent waits in exactly the sets that match them: a matching call is offered at once.
    offer = await engine.enqueue(call("match"))
    assert offer is not None and offer.call_id == "match"
    assert sorted(await engine.live_calls()) == ["match", "other-county", "other-language", "other-line"]


async def test_an_agent_with_several_lines_and_languages_takes_the_best_call_of_all(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await engine.enqueue(call("zh-quality", line=QUALITY))
    clock.advance(1)
    await engine.enqueue(call("en-complaint", language="en"))
    await engine.login(agent("a1", lines=(LINE, QUALITY), languages=("zh-CN", "en")))
    offer = await engine.set_available("a1")
    assert offer is not None and (offer.call_id, offer.line) == ("zh-quality", QUALITY)


async def test_a_call_waiting_at_a_county_is_offered_to_a_city_agent_once_it_overflows_ahead_of_younger_city_calls(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await engine.enqueue(call("county-call", jurisdiction=COUNTY))
    clock.advance(10)
    await engine.enqueue(call("city-call", jurisdiction=CITY))
    await engine.login(agent("city-agent", home=CITY))
    assert await engine.overflow("county-call", CITY) is None  # nobody available yet
    assert await engine.waiting(CITY, LINE) == ["county-call", "city-call"]
    offer = await engine.set_available("city-agent")
    assert offer == Offer("county-call", "ch-county-call", "city-agent", "PJSIP/city-agent", CITY, LINE)
    # It left the county queue too: no county agent can be offered it any more.
    assert await engine.waiting(COUNTY, LINE) == []
    await ready(engine, agent("county-agent", home=COUNTY))
    assert await state(engine, "county-agent") is AgentState.AVAILABLE


async def test_an_overflow_offers_the_call_at_once_to_a_free_agent_of_the_higher_level(engine: QueueEngine) -> None:
    await ready(engine, agent("province-agent", home=PROVINCE))
    assert await engine.enqueue(call("c1")) is None
    offer = await engine.overflow("c1", PROVINCE)
    assert offer is not None and (offer.agent_id, offer.queue) == ("province-agent", PROVINCE)


async def test_overflow_is_idempotent_and_keeps_the_call_in_its_own_queue(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await engine.enqueue(call("c1"))
    clock.advance(30)
    await engine.overflow("c1", CITY)
    await engine.overflow("c1", CITY)
    await engine.overflow("c1", COUNTY)  # its own queue: nothing changes
    info = await engine.call("c1")
    assert info is not None and list(info["queues"]) == [COUNTY, CITY]
    assert await engine.waiting(CITY, LINE) == ["c1"]
    assert await engine.waiting(COUNTY, LINE) == ["c1"]
    # Its place in time is kept: it counts as waiting 30 s in the city queue as well.
    assert await engine.overdue(CITY, LINE, 30) == ["c1"]
    assert await engine.overdue(CITY, LINE, 31) == []


async def test_overflowing_an_unknown_call_is_a_clear_error(engine: QueueEngine) -> None:
    with pytest.raises(UnknownCallError, match="no call nobody"):
        await engine.overflow("nobody", CITY)


async def test_a_ring_no_answer_puts_the_agent_on_break_and_the_call_back_at_the_head(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"))
    offer = await engine.enqueue(call("first"))
    assert offer is not None
    clock.advance(5)
    await engine.enqueue(call("second"))
    clock.advance(20)
    assert await engine.ring_no_answer("first", "a1") is None
    info = await engine.agent("a1")
    assert info is not None
    assert (info["state"], info["reason"], info["call_id"]) == (AgentState.BREAK, "no_answer", None)
    assert await engine.waiting(COUNTY, LINE) == ["first", "second"]
    assert await engine.position("first") == (1, None)


async def test_a_ring_no_answer_offers_the_call_to_another_free_agent_in_every_queue_it_was_in(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"))
    assert await engine.enqueue(call("c1")) is not None
    await engine.overflow("c1", CITY)  # while ringing: remembered for a ring-no-answer
    await ready(engine, agent("city-agent", home=CITY))
    offer = await engine.ring_no_answer("c1", "a1")
    assert offer is not None and (offer.agent_id, offer.queue) == ("city-agent", CITY)


async def test_a_ring_no_answer_offers_the_call_to_the_agent_idle_longest_across_its_queues(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"))
    assert await engine.enqueue(call("c1")) is not None
    await engine.overflow("c1", CITY)
    clock.advance(1)
    await ready(engine, agent("z-city", home=CITY))  # idle first, though last by name
    clock.advance(1)
    await ready(engine, agent("b-county"))
    offer = await engine.ring_no_answer("c1", "a1")
    assert offer is not None and (offer.agent_id, offer.queue) == ("z-city", CITY)


async def test_answered_and_ring_no_answer_are_refused_for_a_call_not_ringing_at_that_agent(
    engine: QueueEngine
) -> None:
    await ready(engine, agent("a1"), agent("a2"))
    offer = await engine.enqueue(call("c1"))
    assert offer is not None and offer.agent_id == "a1"
    with pytest.raises(CallStateError, match="call c1 is ringing at agent a1, not ringing at agent a2"):
        await engine.answered("c1", "a2")
    await engine.answered("c1", "a1")
    with pytest.raises(CallStateError, match="is on_call"):
        await engine.ring_no_answer("c1", "a1")
    with pytest.raises(UnknownCallError):
        await engine.answered("nobody", "a1")


async def test_an_agent_on_a_call_cannot_be_made_available_nor_offered_another_call(engine: QueueEngine) -> None:
    await ready(engine, agent("a1"))
    await engine.enqueue(call("c1"))
    await engine.answered("c1", "a1")
    with pytest.raises(AgentStateError, match="agent a1 is on_call with call c1"):
        await engine.set_available("a1")
    with pytest.raises(AgentStateError, match="on_call"):
        await engine.set_break("a1", "lunch")
    with pytest.raises(AgentStateError, match="hung_up before logging out"):
        await engine.logout("a1")
    assert await engine.enqueue(call("c2")) is None
    assert await engine.waiting(COUNTY, LINE) == ["c2"]


async def test_unknown_and_offline_agents_get_clear_errors(engine: QueueEngine) -> None:
    with pytest.raises(UnknownAgentError, match="no agent ghost"):
        await engine.set_available("ghost")
    await engine.login(agent("a1"))
    await engine.logout("a1")
    with pytest.raises(AgentStateError, match="offline: log in first"):
        await engine.set_available("a1")


async def test_bad_input_is_refused_with_a_specific_error() -> None:
    with pytest.raises(ValueError, match="jurisdiction must be a non-empty string without ':'"):
        WaitingCall("c1", "ch", "33:01", LINE)
    with pytest.raises(ValueError, match="priority must be an integer in -512..511"):
        WaitingCall("c1", "ch", COUNTY, LINE, priority=1000)
    with pytest.raises(ValueError, match="languages must not be empty"):
        Agent("a1", COUNTY, frozenset({LINE}), frozenset(), "PJSIP/a1")
    with pytest.raises(ValueError, match="lines must be a set of strings"):
        Agent("a1", COUNTY, LINE, frozenset({"zh-CN"}), "PJSIP/a1")  # type: ignore[arg-type]


async def test_enqueueing_a_call_twice_is_refused(engine: QueueEngine) -> None:
    await engine.enqueue(call("c1"))
    with pytest.raises(CallStateError, match="call c1 is already waiting"):
        await engine.enqueue(call("c1"))
    assert await engine.waiting(COUNTY, LINE) == ["c1"]


async def test_a_hung_up_caller_leaves_every_queue(engine: QueueEngine) -> None:
    await engine.enqueue(call("c1"))
    await engine.overflow("c1", CITY)
    await engine.overflow("c1", PROVINCE)
    assert await engine.remove("c1", "hangup") is True
    for jurisdiction in (COUNTY, CITY, PROVINCE):
        assert await engine.waiting(jurisdiction, LINE) == []
        assert await engine.overdue(jurisdiction, LINE, 0) == []
    assert await engine.call("c1") is None
    assert await engine.live_calls() == []
    assert await engine.remove("c1", "hangup") is False
    # No agent of any of those queues is offered it afterwards.
    offers = await ready(engine, agent("a1"), agent("a2", home=CITY), agent("a3", home=PROVINCE))
    assert offers == [None, None, None]


async def test_a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent_keeping_their_place(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"))
    clock.advance(1)
    await ready(engine, agent("a2"))
    offer = await engine.enqueue(call("c1"))
    assert offer is not None and offer.agent_id == "a1"
    clock.advance(3)
    assert await engine.remove("c1", "hangup") is True
    assert await engine.wrap_up_due() == ["a1"]
    assert await engine.set_available("a1") is None
    # a1 was idle before a2 and did nothing since: still first in line.
    offer = await engine.enqueue(call("c2"))
    assert offer is not None and offer.agent_id == "a1"


async def test_a_caller_who_hangs_up_mid_conversation_puts_the_agent_in_wrap_up(engine: QueueEngine) -> None:
    await ready(engine, agent("a1"))
    await engine.enqueue(call("c1"))
    await engine.answered("c1", "a1")
    assert await engine.remove("c1", "hangup") is True
    assert await state(engine, "a1") is AgentState.WRAP_UP


async def test_a_wrap_up_this_engine_started_is_named_once_when_due_and_ends_only_if_redis_says_so(
    engine: QueueEngine, clock: MillisClock
) -> None:
    await ready(engine, agent("a1"), agent("a2"))
    for c, a in (("c1", "a1"), ("c2", "a2")):
        offer = await engine.enqueue(call(c))
        assert offer is not None and offer.agent_id == a
        await engine.answered(c, a)
        await engine.hung_up(c, a)
    assert engine.wrap_ups_due(clock.now) == []
    assert await engine.end_wrap_up("a1") == (False, None)  # not due yet: nothing changed
    assert await state(engine, "a1") is AgentState.WRAP_UP
    await engine.set_break("a2", "lunch")
    clock.advance(10)  # the default wrap-up
    assert engine.wrap_ups_due(clock.now) == ["a1", "a2"]
    assert engine.wrap_ups_due(clock.now) == []  # named once
    assert await engine.end_wrap_up("a1") == (True, None)
    assert await engine.end_wrap_up("a2") == (False, None)  # on the break they chose
    assert [await state(engine, a) for a in ("a1", "a2")] == [AgentState.AVAILABLE, AgentState.BREAK]


async def test_hung_up_starts_the_wrap_up_of_the_queue_that_answered(
    redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    engine = QueueEngine(redis, redis_prefix, clock_ms=clock, wrap_up_s={f"{CITY}:{LINE}": 60, LINE: 20, "*": 5})
    await ready(engine, agent("city", home=CITY), agent("county"), agent("quality", lines=(QUALITY,)))
    for c in (call("c1"), call("c2", jurisdiction=CITY), call("c3", line=QUALITY)):
        offer = await engine.enqueue(c)
        assert offer is not None
        await engine.answered(offer.call_id, offer.agent_id)
        await engine.hung_up(offer.call_id, offer.agent_id)
    until = {a: (await engine.agent(a) or {})["wrap_up_until_ms"] - clock.now for a in ("city", "county", "quality")}
    assert until == {"city": 60_000, "county": 20_000, "quality": 5_000}
    assert await engine.wrap_up_due(clock.now + 20_000) == ["quality", "county"]


async def test_a_restarted_engine_finishes_wrap_ups_it_did_not_time(
    redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    first = QueueEngine(redis, redis_prefix, clock_ms=clock, wrap_up_s=10)
    await ready(first, agent("a1"))
    await first.enqueue(call("c1"))
    await first.answered("c1", "a1")
    await first.hung_up("c1", "a1")
    await first.enqueue(call("c2"))
    del first  # the process dies during the wrap-up

    clock.advance(11)
    second = QueueEngine(redis, redis_prefix, clock_ms=clock)
    assert await second.wrap_up_due() == ["a1"]
    offer = await second.set_available("a1")
    assert offer is not None and offer.call_id == "c2"
    assert await second.wrap_up_due() == []


async def test_position_and_estimated_wait_follow_recent_answers(engine: QueueEngine, clock: MillisClock) -> None:
    for c in (call("c0"), call("c1"), call("c2"), call("c3"), call("bo", language="bo"), call("vip", priority=1)):
        await engine.enqueue(c)
        clock.advance(1)
    assert await engine.position("c0") == (2, None)  # behind vip; no answers yet: no estimate
    assert await engine.position("bo") == (6, None)  # every call ahead counts, whatever its language
    await engine.login(agent("a1"))
    # Two answers in 60 s: one every 30 s.
    for _ in range(2):
        clock.advance(30)
        offer = await engine.set_available("a1")
        assert offer is not None
        await engine.answered(offer.call_id, "a1")
        await engine.hung_up(offer.call_id, "a1")
    assert await engine.position("c2") == (2, 60.0)
    clock.advance(100)  # nobody answers any more: the estimate grows with the silence
    assert await engine.position("c2") == (2, 200.0)
    offer = await engine.set_available("a1")
    assert offer is not None and offer.call_id == "c1"
    assert await engine.position("c1") == (0, None)  # ringing: no longer waiting


async def test_position_of_an_overflowed_call_is_its_best_queue(engine: QueueEngine, clock: MillisClock) -> None:
    for i in range(3):
        await engine.enqueue(call(f"county{i}"))
        clock.advance(1)
    await engine.overflow("county2", CITY)
    assert await engine.position("county2") == (1, None)
    with pytest.raises(UnknownCallError):
        await engine.position("nobody")


async def test_two_app_instances_sharing_redis_never_assign_one_call_twice(
    redis_server: RedisProcess, redis_prefix: str
) -> None:
    one, two = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        a, b = QueueEngine(one, redis_prefix), QueueEngine(two, redis_prefix)
        agents = [agent(f"a{i}", lines=(LINE, QUALITY)) for i in range(40)]
        for x in agents:
            await a.login(x)
        calls = [call(f"c{i}", line=(LINE, QUALITY)[i % 2]) for i in range(60)]
        # Both processes enqueue and make agents available at once, each agent from both.
        work = [(a, b)[i % 2].enqueue(c) for i, c in enumerate(calls)]
        work += [engine.set_available(x.agent_id) for x in agents for engine in (a, b)]
        results = await asyncio.gather(*work, return_exceptions=True)
        offers = [r for r in results if isinstance(r, Offer)]
        # The second "ready" of an agent who already got a call is refused, nothing else fails.
        refused = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, AgentStateError) and "is ringing with call" in str(r) for r in refused)
        assert len(offers) == 40  # 60 calls, 40 agents: every agent got exactly one call
        assert len({o.call_id for o in offers}) == 40
        assert len({o.agent_id for o in offers}) == 40
        waiting = await a.waiting(COUNTY, LINE) + await a.waiting(COUNTY, QUALITY)
        assert sorted(waiting + [o.call_id for o in offers]) == sorted(c.call_id for c in calls)
        for o in offers:
            info = await b.call(o.call_id)
            assert info is not None and info["agent_id"] == o.agent_id and info["state"] == "ringing"
    finally:
        await one.aclose()
        await two.aclose()


async def test_relogging_in_updates_the_profile_and_an_available_agent_must_say_ready_again(
    engine: QueueEngine,
) -> None:
    await ready(engine, agent("a1"))
    await engine.enqueue(call("quality", line=QUALITY))
    await engine.login(agent("a1", lines=(LINE, QUALITY)))
    assert await state(engine, "a1") is AgentState.BREAK
    offer = await engine.set_available("a1")
    assert offer is not None and offer.call_id == "quality"
    assert await engine.staffed(COUNTY, QUALITY) == 1
    await engine.answered("quality", "a1")
    await engine.login(agent("a1", home=CITY))  # mid-call: the call goes on
    info = await engine.agent("a1")
    assert info is not None and (info["state"], info["call_id"], info["home"]) == (AgentState.ON_CALL, "quality", CITY)
    assert await engine.staffed(COUNTY, LINE) == 0 and await engine.staffed(CITY, LINE) == 1


async def test_logout_takes_the_agent_out_of_every_queue(engine: QueueEngine) -> None:
    await ready(engine, agent("a1", lines=(LINE, QUALITY)))
    await engine.logout("a1")
    assert await engine.logged_in() == []
    assert await engine.staffed(COUNTY, LINE) == 0
    assert await engine.enqueue(call("c1")) is None


async def test_an_engine_carries_on_when_redis_forgot_its_scripts(engine: QueueEngine, redis: Redis) -> None:
    await ready(engine, agent("a1"))
    await redis.script_flush()
    # Both in one pipeline: each finds its script gone, is loaded again and runs once.
    first, second = await asyncio.gather(engine.enqueue(call("c1")), engine.enqueue(call("c2")))
    assert first is not None and first.call_id == "c1" and second is None
    assert await engine.waiting(COUNTY, LINE) == ["c2"]


async def test_waiting_calls_and_agent_states_survive_a_redis_server_restart(
    tmp_path: Path, clock: MillisClock
) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    try:
        client = Redis.from_url(server.url)
        engine = QueueEngine(client, "hotline", clock_ms=clock)
        await ready(engine, agent("a1"), agent("a2"))
        await engine.enqueue(call("talking"))
        await engine.answered("talking", "a1")
        await engine.enqueue(call("ringing"))
        for i in range(3):
            await engine.enqueue(call(f"w{i}"))
        await client.aclose()
        server.stop()  # SIGTERM: redis-server flushes its append-only file

        server.start()
        client = Redis.from_url(server.url)
        engine = QueueEngine(client, "hotline", clock_ms=clock)  # fresh script cache on the server too
        assert await engine.waiting(COUNTY, LINE) == ["w0", "w1", "w2"]
        assert await state(engine, "a1") is AgentState.ON_CALL
        assert await state(engine, "a2") is AgentState.RINGING
        await engine.hung_up("talking", "a1")
        offer = await engine.set_available("a1")
        assert offer is not None and offer.call_id == "w0"
        await client.aclose()
    finally:
        server.stop()



async def test_a_caller_back_soon_takes_the_place_kept_for_them_once_and_ahead_of_later_callers(
        engine: QueueEngine, clock: MillisClock) -> None:
    first_queued = clock()
    clock.advance(60)
    assert await engine.enqueue(call("meanwhile")) is None
    await engine.redis.set("place:138", first_queued)
    clock.advance(60)

    assert await engine.enqueue_resuming(call("back"), "place:138") == (None, True)
    assert await engine.waiting(COUNTY, LINE) == ["back", "meanwhile"]
    info = await engine.call("back")
    assert info is not None and info["enqueued_at_ms"] == first_queued
    assert await engine.redis.exists("place:138") == 0  # taken: a third call starts afresh

    assert await engine.enqueue_resuming(call("third"), "place:138") == (None, False)
    clock.advance(1)
    assert await engine.enqueue_resuming(call("fourth"), None) == (None, False)
    assert await engine.waiting(COUNTY, LINE) == ["back", "meanwhile", "third", "fourth"]


async def test_a_kept_place_keeps_the_calls_priority(engine: QueueEngine, clock: MillisClock) -> None:
    await engine.redis.set("place:139", clock() - 5_000)
    await engine.enqueue(call("urgent", priority=5))
    assert await engine.enqueue_resuming(call("back"), "place:139") == (None, True)
    assert await engine.waiting(COUNTY, LINE) == ["urgent", "back"]  # priority first, then time


async def test_a_caller_back_soon_is_offered_at_once_to_a_free_agent(engine: QueueEngine, clock: MillisClock) -> None:
    await ready(engine, agent("a1"))
    await engine.redis.set("place:140", clock() - 1_000)
    assert await engine.enqueue_resuming(call("back"), "place:140") == (
        Offer("back", "ch-back", "a1", "PJSIP/a1", COUNTY, LINE), True)
