"""A call's live state in Redis: stored at its first transition and counted among the live calls
(what a restarted process resumes), overwritten at each later one, read back as it was saved,
gone with the call."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from redis.asyncio import Redis

from calls.store import SAVE_AHEAD_S, CallState, CallStateStore
from core.lean_redis import LeanRedis
from tests.support.redis import redis_round_trips


def a_call() -> CallState:
    return CallState(call_id="c1", channel_id="ch1", hotline_number="12315", business_line="general",
                     area_code="0571", caller_phone="13800138000", language="zh-CN",
                     started_at=datetime(2026, 11, 24, 10, 0, 0, 250_000, tzinfo=UTC))


async def test_a_call_saved_at_every_transition_reads_back_as_last_saved_and_is_live_until_deleted(
    redis: Redis, redis_prefix: str
) -> None:
    store = CallStateStore(redis, redis_prefix)
    call = a_call()
    await store.save(call)  # its first transition
    call.state, call.choice, call.recognized_by = "routed", "complaint", "dtmf"
    call.menu_path.append("main_menu:1:complaint")
    call.queued_at = datetime(2026, 11, 24, 10, 0, 9, tzinfo=UTC)
    await store.save(call, new=False)  # a later one: the call is live already
    call.state, call.agent_id, call.agent_channel = "connected", "1001", "ch1-agent-ab12-1"
    call.answered_at = datetime(2026, 11, 24, 10, 0, 12, tzinfo=UTC)
    await store.save(call, new=False)

    assert await store.load("ch1") == call
    assert await store.live_channel_ids() == {"ch1"}
    await store.delete("ch1")
    assert await store.load("ch1") is None
    assert await store.live_channel_ids() == set()


def test_the_stored_json_has_every_field_and_its_times_in_iso_8601() -> None:
    call = a_call()
    call.menu_path.append("main_menu:timeout")
    call.transcript, call.confidence = "我要投诉", 0.82
    stored = json.loads(call.to_json())
    assert stored["started_at"] == "2026-11-24T10:00:00.250000+00:00" and stored["ended_at"] is None
    assert stored["menu_path"] == ["main_menu:timeout"] and stored["transcript"] == "我要投诉"
    assert set(stored) == set(CallState.__dataclass_fields__)
    assert CallState.from_json(call.to_json()) == call


def test_a_state_stored_by_a_version_with_other_fields_still_reads() -> None:
    stored = json.loads(a_call().to_json())
    stored["retired_field"] = "kept by an older process"
    assert CallState.from_json(json.dumps(stored)) == a_call()


async def test_a_state_saved_ahead_goes_with_the_next_command_in_front_of_it(
    lean: LeanRedis, redis_prefix: str
) -> None:
    """Routing's save needs no round trip of its own: it is written with the queue's script
    that follows, ahead of it, so the script never acts on a call whose state is not stored."""
    store = CallStateStore(lean, redis_prefix)
    call = a_call()
    await store.save(call)
    call.state, call.choice = "routed", "complaint"
    with redis_round_trips(lean) as trips:
        await store.save_ahead(call, new=False)
        stored = await lean.get(f"{redis_prefix}:ivr:call:ch1")  # the next command: it sees the save
    assert trips == [["get"]] and CallState.from_json(stored) == call


async def test_a_state_saved_ahead_with_no_command_after_it_goes_alone_a_moment_later(
    lean: LeanRedis, redis: Redis, redis_prefix: str
) -> None:
    store = CallStateStore(lean, redis_prefix)
    call = a_call()
    await store.save_ahead(call)  # its first: counted among the live calls too
    await asyncio.sleep(SAVE_AHEAD_S + 0.1)
    assert await CallStateStore(redis, redis_prefix).load("ch1") == call
    assert await redis.smembers(f"{redis_prefix}:ivr:live") == {b"ch1"}


async def test_a_state_told_is_stored_before_the_next_command_without_a_reply_of_its_own(
    lean: LeanRedis, redis_prefix: str
) -> None:
    """The flow's saves are written before the state acts, and nobody waits for Redis's "OK":
    the process is not woken for it (issue 15); the next command sees them."""
    store = CallStateStore(lean, redis_prefix)
    call = a_call()
    with redis_round_trips(lean) as trips:
        await store.tell(call)  # its first: counted among the live calls too
        call.state = "routed"
        await store.tell(call, new=False)
        assert await store.live_channel_ids() == {"ch1"}
        assert await store.load("ch1") == call
    assert trips == [["smembers"], ["get"]]


async def test_a_state_a_queue_script_stored_is_not_written_again_but_a_changed_one_is(
    lean: LeanRedis, redis_prefix: str
) -> None:
    """The script that connects an agent stores the call's next state with its change; the
    flow's own save of that state after it is no second write (issue 15). Anything changed
    since goes as before."""
    store = CallStateStore(lean, redis_prefix)
    call = a_call()
    await store.tell(call)
    call.state = "connected"
    write = store.write(call)
    assert write[:2] == ("SET", f"{redis_prefix}:ivr:call:ch1")
    store.stored_by_script(write)  # said, not done: what the flow saves next shows which was written
    await store.tell(call, new=False)
    assert (await store.load("ch1") or a_call()).state == "answering"
    call.state = "ended"
    store.stored_by_script(store.write(call))
    call.outcome = "answered"  # changed after the script
    await store.tell(call, new=False)
    assert await store.load("ch1") == call
