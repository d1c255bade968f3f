"""One dispatcher from ARI events to per-call handlers, each call's events in order.

Every event has a route key (a channel id, or ``bridge:<id>`` for bridge-level
events). Each key gets its own FIFO and at most one worker task at a time, so a
call's events are handled strictly in arrival order while different calls proceed
concurrently. Flows may *alias* a bridge or a helper channel (externalMedia, an
agent leg) to the caller's key so that everything about one call is serialized.

Local events (timers, resynchronization) are posted into the same FIFOs, which is
why a timer can never overtake a DTMF digit that arrived before it fired.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ari.models import Channel, Event
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: Route key used for events that belong to no channel or bridge.
APP_KEY = "_app"

Sink = Callable[[str, Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    """A flow's timer expired (posted locally, never sent by Asterisk)."""

    key: str
    name: str
    token: int

    def route_key(self) -> str | None:
        return self.key


@dataclass(frozen=True, slots=True)
class Resynchronized(Event):
    """After a (re)connect: this channel is alive in our application according to ARI."""

    channel: Channel

    def route_key(self) -> str | None:
        return self.channel.id


class Dispatcher:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._queues: dict[str, deque[Event]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._aliases: dict[str, str] = {}
        #: The keys aliased to each owner, so that a call's end lets go of them all
        #: (:meth:`release`): a call's agent legs and bridges were kept here for good.
        self._owned: dict[str, set[str]] = {}

    # --- routing ----------------------------------------------------------------

    def alias(self, key: str, owner: str) -> None:
        """Route events of ``key`` (e.g. ``bridge:b1``) to ``owner``'s FIFO (from another
        owner's, if it had it)."""
        before = self._aliases.get(key)
        if before is not None and before != owner:
            self._let_go(before, key)
        self._aliases[key] = owner
        self._owned.setdefault(owner, set()).add(key)

    def unalias(self, key: str) -> None:
        owner = self._aliases.pop(key, None)
        if owner is not None:
            self._let_go(owner, key)

    def release(self, owner: str) -> None:
        """``owner`` is over (a call ended): the keys aliased to it route as themselves again.
        Their late events (an agent leg's destruction) then reach no call, as they would have."""
        for key in self._owned.pop(owner, ()):
            if self._aliases.get(key) == owner:
                del self._aliases[key]

    @property
    def aliases(self) -> int:
        """How many keys route to another key's FIFO (for tests and the benches)."""
        return len(self._aliases)

    def _let_go(self, owner: str, key: str) -> None:
        keys = self._owned.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._owned[owner]

    def owner_of(self, key: str) -> str:
        return self._aliases.get(key, key)

    def dispatch(self, event: Event) -> None:
        """Queue an event for its call. Never blocks: the WebSocket reader stays fast."""
        key = event.route_key() or APP_KEY
        self._enqueue(self.owner_of(key), event)

    post = dispatch

    def _enqueue(self, key: str, event: Event) -> None:
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(event)
            return
        queue = self._queues[key] = deque((event,))
        self._tasks[key] = asyncio.get_running_loop().create_task(
            self._drain(key, queue), name=f"ari-events:{key}"
        )

    async def _drain(self, key: str, queue: deque[Event]) -> None:
        # The worker leaves only when its FIFO is empty; there is no await between the
        # emptiness check and the removal, so a new event always finds either this
        # worker still looping or no worker at all (and starts a fresh one).
        try:
            while queue:
                event = queue[0]
                try:
                    await self._sink(key, event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handler for %s on %s failed", event.type, key)
                queue.popleft()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
                del self._tasks[key]

    # --- life cycle -------------------------------------------------------------

    @property
    def busy_keys(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued event has been handled (used at shutdown and in tests)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} call(s) still handling events")
            await asyncio.wait(list(self._tasks.values()), timeout=remaining)

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks.values()), what="call event handlers")
        self._queues.clear()
        self._tasks.clear()


class Timers:
    """Per-key timers delivered as :class:`TimerFired` events through the dispatcher.

    ``loop.call_later`` rather than a task per timer: a call in a menu holds one cheap
    handle, which matters at thousands of concurrent calls.
    """

    def __init__(self, dispatcher: Dispatcher, application: str) -> None:
        self._dispatcher = dispatcher
        self._app = application
        self._handles: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._token = 0

    def start(self, key: str, name: str, delay_s: float) -> int:
        """(Re)start timer ``name`` for ``key``; returns the token the event will carry."""
        self.cancel(key, name)
        self._token += 1
        token = self._token
        event = TimerFired(type="TimerFired", application=self._app, timestamp="", key=key, name=name, token=token)

        def fire() -> None:
            self._handles.pop((key, name), None)
            self._dispatcher.post(event)

        self._handles[(key, name)] = asyncio.get_running_loop().call_later(delay_s, fire)
        return token

    def cancel(self, key: str, name: str) -> None:
        handle = self._handles.pop((key, name), None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self, key: str) -> None:
        for k in [k for k in self._handles if k[0] == key]:
            self._handles.pop(k).cancel()

    def active(self, key: str) -> list[str]:
        return [name for (k, name) in self._handles if k == key]

    def __len__(self) -> int:
        return len(self._handles)


def make_sink_table(table: dict[str, Callable[[str, Any], Awaitable[None]]]) -> Sink:
    """Build a sink from a table of handlers named after the events; others are ignored."""

    async def sink(key: str, event: Event) -> None:
        handler = table.get(event.type)
        if handler is not None:
            await handler(key, event)

    return sink
