"""Live queue figures for the wallboard, computed from a real redis-server and published on
``<prefix>:figures``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from core.beat import to_the_beat
from devtools.embedded import RedisProcess
from queues.engine import QueueEngine
from queues.figures import FiguresPublisher, mark_watched, snapshot
from tests.support.clock import MillisClock
from tests.support.queues import CITY, COUNTY, LINE, OTHER_COUNTY, QUALITY, agent, call
from tests.support.redis import redis_commands_counted


@pytest.fixture
def engine(redis: Redis, redis_prefix: str, clock: MillisClock) -> QueueEngine:
    # No wrap-up: agent a1 answers one call after another (answer_after).
    return QueueEngine(redis, redis_prefix, clock_ms=clock, wrap_up_s=0)


async def figures_of(redis: Redis, prefix: str, clock: MillisClock, jurisdiction: str,
                     line: str = LINE) -> dict[str, Any]:
    figures = await snapshot(redis, prefix, clock())
    [queue] = [q for q in figures["queues"] if (q["jurisdiction"], q["line"]) == (jurisdiction, line)]
    return queue


async def answer_after(engine: QueueEngine, clock: MillisClock, call_id: str, wait_s: float) -> None:
    """Queue a call, let it wait, and have agent a1 (logged in, resting) answer it."""
    await engine.enqueue(call(call_id))
    clock.advance(wait_s)
    offer = await engine.set_available("a1")
    assert offer is not None and offer.call_id == call_id
    await engine.answered(call_id, "a1")
    await engine.hung_up(call_id, "a1")


async def test_waiting_calls_and_the_longest_wait_are_counted_per_queue(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.enqueue(call("c1"))
    clock.advance(12)
    await engine.enqueue(call("c2"))
    await engine.enqueue(call("c3", jurisdiction=CITY))
    await engine.overflow("c1", CITY)
    clock.advance(8)
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    city = await figures_of(redis, redis_prefix, clock, CITY)
    assert (county["waiting"], county["longest_wait_s"]) == (2, 20.0)
    # The overflowed call counts at the city too, with its wait since it first queued.
    assert (city["waiting"], city["longest_wait_s"]) == (2, 20.0)


async def test_answers_are_counted_within_15_20_and_30_seconds_over_the_last_hour(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    start = clock.now = clock.now - clock.now % 60_000  # on a minute boundary
    await engine.login(agent("a1"))
    for i, wait in enumerate((10, 18, 25, 40)):  # answered at 0:10, 0:28, 0:53 and 1:33
        await answer_after(engine, clock, f"c{i}", wait)
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    assert county["answered"] == 4
    assert county["answered_within"] == {"15": 1, "20": 2, "30": 3}

    clock.now = start + 59 * 60_000 + 59_000  # the first minute is still one of the last 60
    assert (await figures_of(redis, redis_prefix, clock, COUNTY))["answered"] == 4
    clock.now = start + 60 * 60_000  # now it is not: only the answer of minute 1 is left
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    assert (county["answered"], county["answered_within"]) == (1, {"15": 0, "20": 0, "30": 0})
    clock.now = start + 61 * 60_000
    assert (await figures_of(redis, redis_prefix, clock, COUNTY))["answered"] == 0
    # A new answer reuses the slot of minute 1: what it held an hour ago is not added to it.
    await answer_after(engine, clock, "late", 5)
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    assert (county["answered"], county["answered_within"]["15"]) == (1, 1)


async def test_a_caller_who_leaves_unanswered_counts_as_abandoned_in_every_queue_it_waited_in(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.enqueue(call("gone"))
    await engine.overflow("gone", CITY)
    await engine.remove("gone", "hangup")
    await engine.enqueue(call("rings"))
    await engine.login(agent("a1"))
    await engine.set_available("a1")
    await engine.remove("rings", "hangup")  # hung up while the agent's phone rang
    await engine.enqueue(call("later"))
    await engine.remove("later", "callback")  # chose to be called back: not lost
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    city = await figures_of(redis, redis_prefix, clock, CITY)
    assert (county["abandoned"], county["callbacks"], county["answered"]) == (2, 1, 0)
    assert (city["abandoned"], city["callbacks"]) == (1, 0)


async def test_agents_are_counted_by_state_in_each_queue_they_serve(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.login(agent("both", lines=(LINE, QUALITY)))
    await engine.login(agent("resting"))
    await engine.login(agent("gone"))
    await engine.logout("gone")
    await engine.set_available("both")
    await engine.enqueue(call("c1", line=QUALITY))
    county = await figures_of(redis, redis_prefix, clock, COUNTY)
    quality = await figures_of(redis, redis_prefix, clock, COUNTY, QUALITY)
    assert county["agents"] == {"available": 0, "ringing": 1, "on_call": 0, "wrap_up": 0, "break": 1}
    assert quality["agents"] == {"available": 0, "ringing": 1, "on_call": 0, "wrap_up": 0, "break": 0}


async def test_figures_add_up_per_level_when_levels_are_given(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.enqueue(call("c1"))
    clock.advance(5)
    await engine.enqueue(call("c2", jurisdiction=OTHER_COUNTY))
    await engine.enqueue(call("c3", jurisdiction=CITY))
    levels = {COUNTY: "county", OTHER_COUNTY: "county", CITY: "city"}
    figures = await snapshot(redis, redis_prefix, clock(), level_of=levels.__getitem__)
    by_level = {(lv["level"], lv["line"]): lv for lv in figures["levels"]}
    assert (by_level["county", LINE]["waiting"], by_level["county", LINE]["longest_wait_s"]) == (2, 5.0)
    assert by_level["city", LINE]["waiting"] == 1


async def test_the_figures_are_published_as_json_on_the_prefix_figures_channel(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.enqueue(call("c1"))
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{redis_prefix}:figures")
    try:
        published = await FiguresPublisher(redis, redis_prefix, clock_ms=clock).publish()
        message = None
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        received = json.loads(message["data"])
        assert received == published
        assert received["window_s"] == 3600
        assert [(q["jurisdiction"], q["waiting"]) for q in received["queues"]] == [(COUNTY, 1)]
    finally:
        await pubsub.aclose()


async def test_publishing_is_throttled_to_once_per_fifth_of_a_second_across_processes(
    redis_server: RedisProcess, redis_prefix: str, clock: MillisClock
) -> None:
    one, two = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        first, second = (FiguresPublisher(r, redis_prefix, clock_ms=clock) for r in (one, two))
        assert await first.publish() is not None
        assert await second.publish() is None
        clock.advance(0.199)
        assert await first.publish() is None
        clock.advance(0.001)
        assert await second.publish() is not None
    finally:
        await one.aclose()
        await two.aclose()


async def next_published(pubsub: PubSub) -> dict[str, Any]:
    """The next message published on the subscribed channels."""
    while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is None:
        pass
    return message


@asynccontextmanager
async def publishing(redis: Redis, redis_prefix: str, changed: asyncio.Event | None = None,
                     **heartbeats: float) -> AsyncIterator[PubSub]:
    """A publisher running (interval 0.05 s, the given heartbeats) and a subscription to what it
    publishes."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{redis_prefix}:figures")
    task = asyncio.create_task(FiguresPublisher(redis, redis_prefix, min_interval_s=0.05).run(changed, **heartbeats))
    try:
        yield pubsub
    finally:
        task.cancel()
        await pubsub.aclose()


async def test_the_publishing_loop_keeps_publishing(redis: Redis, redis_prefix: str) -> None:
    async with publishing(redis, redis_prefix, quiet_heartbeat_s=0.5) as pubsub:
        # No change at all: the heartbeat publishes anyway; each wait is bounded so that a
        # loop that stopped fails instead of hanging.
        published = [await asyncio.wait_for(next_published(pubsub), 5) for _ in range(3)]
        assert all("queues" in json.loads(m["data"]) for m in published)


async def test_a_change_is_published_at_once_not_at_the_next_heartbeat(redis: Redis, redis_prefix: str) -> None:
    changed = asyncio.Event()
    # The heartbeat is an hour away: whatever is published during the test is the change's.
    async with publishing(redis, redis_prefix, changed, heartbeat_s=3600, quiet_heartbeat_s=3600) as pubsub:
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None  # quiet: nothing new
        changed.set()
        # Bounded only so that a publisher that waits for its heartbeat fails instead of hanging;
        # how soon the figures go out is measured by bench/queues.py.
        message = await asyncio.wait_for(next_published(pubsub), 10)
        assert "queues" in json.loads(message["data"])


async def test_while_a_caller_waits_the_figures_go_out_every_heartbeat_while_nobody_does_only_now_and_then(
    redis: Redis, redis_prefix: str
) -> None:
    changed = asyncio.Event()
    async with publishing(redis, redis_prefix, changed, heartbeat_s=0.1, quiet_heartbeat_s=3600) as pubsub:
        await asyncio.wait_for(next_published(pubsub), 10)  # the first snapshot: nobody waits
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5) is None
        await QueueEngine(redis, redis_prefix).enqueue(call("c1"))
        changed.set()
        waits = [json.loads((await asyncio.wait_for(next_published(pubsub), 10))["data"]) for _ in range(3)]
        assert all(q["waiting"] == 1 for figures in waits for q in figures["queues"] if q["line"] == LINE)


async def test_figures_meant_for_wallboards_are_computed_only_while_one_is_open(
    engine: QueueEngine, redis: Redis, redis_prefix: str, clock: MillisClock
) -> None:
    await engine.enqueue(call("c1"))
    publisher = FiguresPublisher(redis, redis_prefix, clock_ms=clock, only_when_watched=True)
    with redis_commands_counted(redis) as sent:
        assert await publisher.publish() is None
    assert publisher.unwatched and sent == ["evalsha"]  # the gate alone: no snapshot read
    await mark_watched(redis, redis_prefix)
    figures = await publisher.publish()
    assert figures is not None and not publisher.unwatched
    assert [(q["jurisdiction"], q["waiting"]) for q in figures["queues"]] == [(COUNTY, 1)]
    await redis.delete(f"{redis_prefix}:figures:watched")  # the last wallboard's mark ran out
    clock.advance(1)
    assert await publisher.publish() is None and publisher.unwatched


async def test_changes_nobody_watches_are_not_looked_at_until_the_quiet_heartbeat(
    redis: Redis, redis_prefix: str
) -> None:
    changed = asyncio.Event()
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{redis_prefix}:figures")
    def publisher() -> FiguresPublisher:
        return FiguresPublisher(redis, redis_prefix, min_interval_s=0.05, only_when_watched=True)

    assert await publisher().publish() is None  # Redis has the gate's script from now on
    await asyncio.sleep(to_the_beat(1.0) + 0.01)  # just after a beat: the quiet one is a second away
    with redis_commands_counted(redis) as sent:
        task = asyncio.create_task(publisher().run(changed, heartbeat_s=3600, quiet_heartbeat_s=1.0))
        try:
            changed.set()
            await asyncio.sleep(0.2)
            assert sent.count("evalsha") == 1  # the first look finds nobody watching
            for _ in range(5):  # calls come and go: nobody looks
                changed.set()
                await asyncio.sleep(0.05)
            assert sent.count("evalsha") == 1
            assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1) is None
            await mark_watched(redis, redis_prefix)  # a wallboard opens: the heartbeat finds it
            message = await asyncio.wait_for(next_published(pubsub), 10)
            assert "queues" in json.loads(message["data"])
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pubsub.aclose()
