"""The dispatcher runs each call's events in arrival order, calls concurrently."""

from __future__ import annotations

import asyncio

from ari.dispatcher import Dispatcher, TimerFired, Timers
from ari.models import parse_event


def dtmf(channel_id: str, digit: str) -> dict:
    return {
        "type": "ChannelDtmfReceived", "application": "hotline", "timestamp": "2026-11-24T10:00:00.000+0000",
        "digit": digit, "duration_ms": 100,
        "channel": {"id": channel_id, "name": f"PJSIP/trunk-{channel_id}", "state": "Up",
                    "caller": {"name": "", "number": "13800138000"}, "connected": {"name": "", "number": ""},
                    "accountcode": "", "dialplan": {"context": "from-pstn", "exten": "12315", "priority": 3},
                    "creationtime": "2026-11-24T10:00:00.000+0000", "language": "zh_CN", "protocol_id": ""},
    }


async def test_one_calls_events_are_handled_in_order_even_when_handlers_await() -> None:
    seen: list[str] = []

    async def sink(key: str, event) -> None:
        # A slow first handler must not let the second digit overtake it.
        await asyncio.sleep(0.01 if event.digit == "1" else 0)
        seen.append(event.digit)

    dispatcher = Dispatcher(sink)
    for digit in "12345":
        dispatcher.dispatch(parse_event(dtmf("c1", digit)))
    await dispatcher.drain()
    assert seen == list("12345")


async def test_different_calls_do_not_wait_for_each_other() -> None:
    release = asyncio.Event()
    seen: list[str] = []

    async def sink(key: str, event) -> None:
        if key == "slow":
            await release.wait()
        seen.append(key)

    dispatcher = Dispatcher(sink)
    dispatcher.dispatch(parse_event(dtmf("slow", "1")))
    dispatcher.dispatch(parse_event(dtmf("fast", "1")))
    await asyncio.sleep(0.01)
    assert seen == ["fast"]
    release.set()
    await dispatcher.drain()
    assert seen == ["fast", "slow"]


async def test_a_failing_handler_does_not_stop_the_calls_later_events() -> None:
    seen: list[str] = []

    async def sink(key: str, event) -> None:
        if event.digit == "1":
            raise RuntimeError("boom")
        seen.append(event.digit)

    dispatcher = Dispatcher(sink)
    for digit in "123":
        dispatcher.dispatch(parse_event(dtmf("c1", digit)))
    await dispatcher.drain()
    assert seen == ["2", "3"]


async def test_aliased_bridge_events_join_the_owners_queue() -> None:
    keys: list[str] = []

    async def sink(key: str, event) -> None:
        keys.append(key)

    dispatcher = Dispatcher(sink)
    dispatcher.alias("bridge:b1", "c1")
    dispatcher.dispatch(parse_event({
        "type": "BridgeDestroyed", "application": "hotline", "timestamp": "",
        "bridge": {"id": "b1", "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
                   "creator": "Stasis", "name": "", "channels": [], "creationtime": "", "video_mode": "none"},
    }))
    await dispatcher.drain()
    assert keys == ["c1"]


async def test_a_released_owner_lets_go_of_its_keys_but_not_of_one_routed_to_another_since() -> None:
    """A call's end releases its agent legs and bridges: kept, they grew by two a call for good."""
    keys: list[str] = []

    async def sink(key: str, event) -> None:
        keys.append(key)

    dispatcher = Dispatcher(sink)
    dispatcher.alias("c1-agent-1", "c1")
    dispatcher.alias("bridge:kept", "c1")
    dispatcher.alias("bridge:kept", "c2")  # the next call has it now
    dispatcher.release("c1")
    assert dispatcher.aliases == 1 and dispatcher.owner_of("bridge:kept") == "c2"
    dispatcher.dispatch(parse_event(dtmf("c1-agent-1", "1")))
    await dispatcher.drain()
    assert keys == ["c1-agent-1"]
    dispatcher.release("c2")
    assert dispatcher.aliases == 0 and dispatcher.owner_of("bridge:kept") == "bridge:kept"


async def test_a_timer_arrives_as_an_event_in_the_calls_queue_and_can_be_cancelled() -> None:
    fired: list[TimerFired] = []

    async def sink(key: str, event) -> None:
        fired.append(event)

    dispatcher = Dispatcher(sink)
    timers = Timers(dispatcher, "hotline")
    token = timers.start("c1", "no_input", 0.01)
    timers.start("c2", "no_input", 0.01)
    timers.cancel("c2", "no_input")
    await asyncio.sleep(0.05)
    await dispatcher.drain()
    assert [(e.key, e.name, e.token) for e in fired] == [("c1", "no_input", token)]
    assert len(timers) == 0
