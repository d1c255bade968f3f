"""How a feature plugs into the application, and how the composition root puts them together.

A feature is a package with a ``plugin.py`` whose ``build`` function makes the feature from
what it declares as keyword-only parameters, and gives back a :class:`Feature`::

    async def build(*, settings: Settings, redis: Redis, tickets: TicketService) -> Feature: ...

A parameter is filled by name: with one of the shared clients the root makes (``settings``,
``redis``, ``ari``, ...) or with the ``api`` of the feature of that name built before. That is
constructor injection with the wiring checked once at start: a missing dependency, a name
nobody provides or an ``api`` of the wrong type stops the start with a message that says which
plugin needs what, instead of failing on the first call that uses it. A parameter with a
default (usually ``None``) is optional: a feature that is disabled or not installed leaves it
at its default.

What a feature gives back is the same for all: its ``api`` for the features after it, event
handlers subscribed by event name (several features may listen to one event; they run in the
order the features were built, ``first`` ones before the others, and a handler that returns
:data:`CONSUMED` ends the event's round), HTTP routes, and start, resync and stop steps.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, get_type_hints

from aiohttp import web

log = logging.getLogger(__name__)


class _Consumed:
    """The marker a handler returns when an event was its own and nobody else's."""

    def __repr__(self) -> str:
        return "CONSUMED"


CONSUMED: Final = _Consumed()

#: ``(route key, event)``: the key is the call the dispatcher ordered the event under.
Handler = Callable[[str, Any], Awaitable[object]]
Step = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Subscription:
    event: str
    handler: Handler
    #: Before the handlers of the features built earlier (a feature that claims some
    #: channels, such as a supervisor's listening leg, before the call logic sees them).
    first: bool = False


@dataclass(frozen=True)
class Feature:
    """What a plugin's ``build`` gives back."""

    #: What the features built after this one receive under this feature's name.
    api: object = None
    subscriptions: Sequence[Subscription] = ()
    routes: Callable[[web.Application], None] | None = None
    #: Run once, after every feature is built and before the first event arrives.
    start: Step | None = None
    #: Run after every (re)connect of the ARI events, in build order (events in between
    #: were lost: what the feature keeps in Redis or SQL is reconciled with Asterisk here).
    resync: Step | None = None
    #: Named shutdown steps; the features stop in the reverse of their build order.
    stop: Sequence[tuple[str, Step]] = ()


class Builder(Protocol):
    __name__: str

    def __call__(self, **deps: Any) -> Awaitable[Feature | None]: ...


@dataclass(frozen=True, slots=True)
class Plugin:
    """One feature: its name (how others ask for it) and its build function."""

    name: str
    build: Builder


class WiringError(RuntimeError):
    """A plugin asks for something nobody provides (or provides as the wrong type)."""


class EventTable:
    """The dispatcher's sink: each event's handlers, by event name, in subscription order.

    Filled while the features are built and frozen before the first event flows, so that no
    handler can appear half-way (an event posted before its handler was added would be lost).
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._firsts = 0
        self._frozen = False

    def subscribe(self, subscriptions: Iterable[Subscription]) -> None:
        if self._frozen:
            raise RuntimeError("the event table is frozen: subscribe while the features are built")
        for sub in subscriptions:
            handlers = self._handlers.setdefault(sub.event, [])
            # A later feature's "first" handler goes before everything already there.
            handlers.insert(0, sub.handler) if sub.first else handlers.append(sub.handler)

    def freeze(self) -> None:
        self._frozen = True

    def events(self) -> set[str]:
        return set(self._handlers)

    async def __call__(self, key: str, event: Any) -> None:
        for handler in self._handlers.get(event.type, ()):
            if await handler(key, event) is CONSUMED:
                return


@dataclass
class Assembly:
    """The built features, in build order, and what each gave back."""

    features: dict[str, Feature] = field(default_factory=dict)

    def api(self, name: str) -> object:
        feature = self.features.get(name)
        return None if feature is None else feature.api

    def routes(self) -> list[Callable[[web.Application], None]]:
        return [f.routes for f in self.features.values() if f.routes is not None]

    def starts(self) -> list[Step]:
        return [f.start for f in self.features.values() if f.start is not None]

    def resyncs(self) -> list[tuple[str, Step]]:
        return [(name, f.resync) for name, f in self.features.items() if f.resync is not None]

    def stops(self) -> list[tuple[str, Step]]:
        return [step for f in reversed(self.features.values()) for step in f.stop]


async def assemble(plugins: Sequence[Plugin], provided: Mapping[str, object], table: EventTable) -> Assembly:
    """Build the plugins in order, each from the shared clients and the features before it."""
    assembly = Assembly()
    names = {p.name for p in plugins}
    for plugin in plugins:
        deps = _arguments(plugin, provided, assembly, names)
        feature = await plugin.build(**deps)
        if feature is None:
            log.info("feature %s is off (by its settings)", plugin.name)
            continue
        assembly.features[plugin.name] = feature
        table.subscribe(feature.subscriptions)
    table.freeze()
    return assembly


def _arguments(plugin: Plugin, provided: Mapping[str, object], built: Assembly,
               plugin_names: set[str]) -> dict[str, object]:
    signature = inspect.signature(plugin.build)
    try:
        hints = get_type_hints(plugin.build)
    except NameError:
        # An annotation imported only for the type checker (an optional extra such as speech):
        # the types are then checked by mypy alone.
        hints = {}
    args: dict[str, object] = {}
    for name, param in signature.parameters.items():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise WiringError(f"plugin {plugin.name}: build() takes its dependencies as keyword-only "
                              f"parameters, {name!r} is not")
        if name in provided:
            value = provided[name]
        elif name in built.features:
            value = built.api(name)
        elif param.default is not inspect.Parameter.empty:
            continue  # optional: off, not installed, or built later (then it is an ordering slip)
        elif name in plugin_names:
            raise WiringError(f"plugin {plugin.name} needs feature {name!r}, which is off or listed after it")
        else:
            raise WiringError(f"plugin {plugin.name} needs {name!r}, which no plugin or shared client provides")
        _check_type(plugin.name, name, value, hints.get(name))
        args[name] = value
    return args


def _check_type(plugin: str, name: str, value: object, hint: object) -> None:
    # Classes only: a Protocol or a union is the type checker's to verify.
    if isinstance(hint, type) and not getattr(hint, "_is_protocol", False) and not isinstance(value, hint):
        raise WiringError(f"plugin {plugin}: {name!r} should be a {hint.__qualname__}, "
                          f"got a {type(value).__qualname__}")
