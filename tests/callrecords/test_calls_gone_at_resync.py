"""A call that ended while we were not listening ends, in its record, at the last moment we
knew it alive: when the connection to Asterisk was lost, or when a process that died last
wrote its heartbeat. Not at the resync that found it gone (ARI replays nothing)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from calls.liveness import Liveness
from calls.services import GONE_AT_RESYNC
from calls.store import CallState, CallStateStore
from core.settings import Settings
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_call_that_ended_while_the_connection_was_lost_ends_when_it_was_lost(
        pbx_sim, settings: Settings, prompts: PromptCatalogue) -> None:  # type: ignore[no-untyped-def]
    # Reconnecting takes half a second or more here: long enough to tell the two moments apart.
    settings = settings.model_copy(update={"ari": settings.ari.model_copy(
        update={"reconnect_initial_s": 1.0, "reconnect_max_s": 1.0})})
    async with running(settings) as app:
        call = await pbx_sim.place_call("12315", caller_id="13800138000")
        await call.wait_for_playback(prefix=prompts.media("main_menu"))
        before = now()
        await app.events.disconnect()

        async def disconnected() -> bool:
            return not app.events.connected.is_set()

        await eventually(disconnected)
        lost_seen = now()
        await call.hangup()  # while nobody listens: the application hears nothing of it
        await call.wait_ended()
        hung_up = now()
        await app.wait_connected(timeout=10)
        await app.dispatcher.drain()
        await app.records.flush()
        record = await app.call_records.by_channel(call.channel_id)

    assert record is not None and record.hangup_cause == GONE_AT_RESYNC
    assert record.outcome == "abandoned_in_menu"
    assert record.ended_at is not None and before <= record.ended_at <= lost_seen < hung_up


async def test_a_call_that_ended_while_the_application_was_down_ends_at_its_last_heartbeat(
        pbx_sim, settings: Settings, prompts: PromptCatalogue) -> None:  # type: ignore[no-untyped-def]
    async with running(settings):
        call = await pbx_sim.place_call("12365", caller_id="13800138000")
        await call.wait_for_playback(prefix=prompts.media("main_menu"))
    stopped = now()  # the process is gone; the call stays in Asterisk and in Redis
    await call.hangup()
    await call.wait_ended()
    await asyncio.sleep(0.3)

    async with running(settings) as second:
        await second.dispatcher.drain()
        await second.records.flush()
        record = await second.call_records.by_channel(call.channel_id)
        resynced = now()

    assert record is not None and record.hangup_cause == GONE_AT_RESYNC
    assert record.ended_at is not None
    # Its heartbeat may predate the call: then the call's own start is the last moment known.
    assert record.started_at <= record.ended_at <= stopped < resynced - timedelta(seconds=0.3)


async def test_the_heartbeat_is_what_a_restarted_process_reads_unless_it_saw_the_loss_itself(
        redis: Redis, redis_prefix: str) -> None:
    beat_at = datetime(2026, 12, 5, 13, 0, 2, tzinfo=UTC)
    liveness = Liveness(redis, redis_prefix, clock=lambda: beat_at)
    assert await liveness.last() is None and await liveness.gone_since(None) is None
    await liveness.beat()
    restarted = Liveness(redis, redis_prefix)
    assert await restarted.last() == beat_at
    assert await restarted.gone_since(None) == beat_at
    lost = beat_at + timedelta(seconds=1)
    assert await restarted.gone_since(lost) == lost


async def test_the_heartbeat_beats_only_while_connected(redis: Redis, redis_prefix: str) -> None:
    liveness = Liveness(redis, redis_prefix, interval_s=0.01)
    connected = asyncio.Event()
    task = asyncio.create_task(liveness.run(connected))
    try:
        await asyncio.sleep(0.05)
        assert await liveness.last() is None  # reconnecting: we know nothing of our calls
        connected.set()

        async def beating() -> bool:
            return await liveness.last() is not None

        await eventually(beating)
        connected.clear()
        await asyncio.sleep(0.05)
        last = await liveness.last()
        await asyncio.sleep(0.05)
        assert await liveness.last() == last
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_ended_call_stays_in_redis_as_ended_until_its_record_is_committed(
        pbx_sim, settings: Settings, prompts: PromptCatalogue) -> None:  # type: ignore[no-untyped-def]
    """The writer pauses before it commits: meanwhile the end is in Redis, not only in memory."""
    async with running(settings) as app:
        store = app.ivr.svc.store
        call = await pbx_sim.place_call("12315", caller_id="13800138000")
        await call.wait_for_playback(prefix=prompts.media("main_menu"))
        await call.hangup()

        async def ended_in_redis() -> CallState | None:
            stored = await store.load(call.channel_id)
            return stored if stored is not None and stored.ended_at is not None else None

        stored = await eventually(ended_in_redis)
        assert stored.outcome == "abandoned_in_menu" and stored.state == "ended"
        assert call.channel_id in await store.live_channel_ids()
        await app.records.flush()

        async def forgotten() -> bool:
            return await store.load(call.channel_id) is None and call.channel_id not in await store.live_channel_ids()

        await eventually(forgotten)
        record = await app.call_records.by_channel(call.channel_id)
        assert record is not None and record.ended_at == stored.ended_at and record.outcome == "abandoned_in_menu"


async def test_a_call_whose_end_was_not_yet_written_when_the_process_died_ends_as_it_did(
        redis: Redis, redis_prefix: str, settings: Settings) -> None:
    """Not as "found gone at resync" at the last heartbeat: its own end, outcome and cause."""
    started = now() - timedelta(minutes=3)
    ended = CallState(call_id="c-died-1", channel_id="1796500000.1", hotline_number="12315",
                      business_line="general", area_code="0571", caller_phone="13800138000", language="zh-CN",
                      started_at=started, state="ended", answered_at=started + timedelta(seconds=20),
                      ended_at=started + timedelta(minutes=2), outcome="answered", agent_id="1001",
                      hangup_cause="16 Normal Clearing")
    store = CallStateStore(redis, redis_prefix)
    await store.save(ended)  # what the process left: the end in Redis, its record not committed
    async with running(settings) as app:
        await app.dispatcher.drain()
        await app.records.flush()
        record = await app.call_records.by_channel(ended.channel_id)

        async def forgotten() -> bool:
            return await store.load(ended.channel_id) is None

        await eventually(forgotten)
    assert record is not None and record.as_dict() == ended.to_record()
