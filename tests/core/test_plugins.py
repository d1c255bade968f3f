"""How features plug in: dependencies by name, checked at start; handlers in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from core.plugins import CONSUMED, EventTable, Feature, Plugin, Subscription, WiringError, assemble


@dataclass
class Event:
    type: str


class Greeter:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting


async def build_greeter(*, settings: str) -> Feature:
    return Feature(api=Greeter(settings))


async def build_door(*, greeter: Greeter, ledger: list[str] | None = None) -> Feature:
    async def on_ring(key: str, event: Event) -> None:
        (ledger if ledger is not None else []).append(f"{greeter.greeting} {key}")

    return Feature(api="door", subscriptions=[Subscription("Ring", on_ring)])


async def test_a_feature_gets_the_shared_clients_and_the_features_before_it_by_name() -> None:
    ledger: list[str] = []
    table = EventTable()
    assembly = await assemble([Plugin("greeter", build_greeter), Plugin("door", build_door)],
                              {"settings": "hello", "ledger": ledger}, table)
    await table("caller-1", Event("Ring"))
    assert ledger == ["hello caller-1"] and list(assembly.features) == ["greeter", "door"]


async def test_a_feature_listed_before_what_it_needs_stops_the_start_with_a_message() -> None:
    with pytest.raises(WiringError, match="plugin door needs feature 'greeter', which is off or listed after it"):
        await assemble([Plugin("door", build_door), Plugin("greeter", build_greeter)], {"settings": "hi"},
                       EventTable())


async def test_a_dependency_nobody_provides_is_named() -> None:
    with pytest.raises(WiringError, match="plugin greeter needs 'settings', which no plugin or shared client"):
        await assemble([Plugin("greeter", build_greeter)], {}, EventTable())


async def test_a_dependency_of_the_wrong_type_is_refused() -> None:
    async def build_fake_greeter(*, settings: str) -> Feature:
        return Feature(api=42)

    with pytest.raises(WiringError, match="'greeter' should be a Greeter, got a int"):
        await assemble([Plugin("greeter", build_fake_greeter), Plugin("door", build_door)], {"settings": "hi"},
                       EventTable())


async def test_a_feature_that_is_off_leaves_optional_dependencies_at_their_default() -> None:
    async def build_off(*, settings: str) -> Feature | None:
        return None

    async def build_user(*, greeter: Greeter | None = None) -> Feature:
        return Feature(api=greeter is None)

    assembly = await assemble([Plugin("greeter", build_off), Plugin("user", build_user)], {"settings": "hi"},
                              EventTable())
    assert assembly.api("user") is True and "greeter" not in assembly.features


async def test_handlers_run_in_build_order_first_ones_before_and_a_consumed_event_goes_no_further() -> None:
    heard: list[str] = []

    def listener(name: str, *, consume_key: str | None = None) -> Callable[[str, Event], Awaitable[object]]:
        async def handler(key: str, event: Event) -> object:
            heard.append(name)
            return CONSUMED if key == consume_key else None
        return handler

    table = EventTable()
    table.subscribe([Subscription("StasisStart", listener("calls"))])
    table.subscribe([Subscription("StasisStart", listener("recordings"))])
    table.subscribe([Subscription("StasisStart", listener("monitor", consume_key="monitor-leg"), first=True)])
    table.freeze()
    await table("caller", Event("StasisStart"))
    await table("monitor-leg", Event("StasisStart"))
    assert heard == ["monitor", "calls", "recordings", "monitor"]


async def test_nobody_subscribes_once_events_flow() -> None:
    table = EventTable()
    table.freeze()

    async def late(key: str, event: Event) -> None: ...

    with pytest.raises(RuntimeError, match="frozen"):
        table.subscribe([Subscription("Ring", late)])


def test_every_listed_feature_has_a_plugin_with_a_build_function() -> None:
    from hotline.plugins import FEATURES, load_plugins

    assert [p.name for p in load_plugins()] == list(FEATURES)
