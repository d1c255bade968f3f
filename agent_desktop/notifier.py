"""Live pushes to the desktops and wallboards of this process, from one Redis subscription.

Whichever process changed something publishes it (``<prefix>:events:agents`` from the queue
engine, ``<prefix>:events:tickets`` from the delivery, ``<prefix>:queues:figures`` from the
figures publisher); every process subscribes once and fans out to the WebSockets it holds:

- an agent's events to that agent's sockets (a fresh ``state``, the offered call's card,
  connected, ended), in the order they were published (one FIFO per agent); ``agent.phone``
  (published by ``agent_desktop.phones``: Asterisk's view of their phone changed) as a fresh
  ``state`` too;
- a ticket's delivery result to the sockets of the agent whose ticket it is;
- a wallboard update to every supervisor socket, rendered once per node on screen. Renders are
  throttled: the first change renders at once, a burst after it at most once per
  ``throttle_s``.

Every socket has its own bounded queue and writer task: a slow or dead browser fills its own
queue, is dropped and closed, and never holds up anyone else.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol

from aiohttp import web
from redis.asyncio import Redis

from agent_desktop.services import DesktopService, DesktopUser
from agent_desktop.wallboard import WallboardService
from agent_desktop.wording import for_agents
from core.lean_redis import listen
from core.problems import Problem
from core.tasks import cancel_and_wait
from queues.figures import WATCHED_TTL_MS, mark_watched
from tickets.services import TicketNotFound, TicketService

log = logging.getLogger(__name__)

#: Close code for a socket that could not keep up (RFC 6455 "try again later").
CLOSE_TOO_SLOW = 1013
#: Close code when the server stops (RFC 6455 "going away").
CLOSE_GOING_AWAY = 1001


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Outlet:
    """One WebSocket: a bounded queue of messages and the task that writes them."""

    def __init__(self, ws: web.WebSocketResponse, *, size: int) -> None:
        self.ws = ws
        self.closed = False
        self._queue: asyncio.Queue[str] = asyncio.Queue(size)
        self._task = asyncio.get_running_loop().create_task(self._write(), name="desktop-socket")
        self._closing: asyncio.Task[None] | None = None

    def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(text)
        except asyncio.QueueFull:
            log.info("a desktop socket could not keep up; closing it (the page reconnects)")
            self.closed = True
            self._closing = asyncio.get_running_loop().create_task(self._close(CLOSE_TOO_SLOW),
                                                                   name="desktop-socket-close")

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.closed = True
                return

    async def close(self, code: int = CLOSE_GOING_AWAY) -> None:
        self.closed = True
        if self._closing is not None:
            await asyncio.wait([self._closing])
            return
        await self._close(code)

    async def _close(self, code: int) -> None:
        self._task.cancel()
        if not self.ws.closed:
            with suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.ws.close(code=code), 2.0)


class AgentEventHook(Protocol):
    """Told of the agent events it wants, in order per agent (see DesktopNotifier)."""

    def wants(self, message: dict[str, Any]) -> bool: ...

    async def agent_changed(self, message: dict[str, Any]) -> None: ...


class _Serial:
    """Runs jobs one after another per key (an agent's events stay in order), keys in parallel."""

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Task[None]] = {}

    def run(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        before = self._last.get(key)

        async def step() -> None:
            if before is not None:
                await asyncio.wait([before])
            try:
                await job()
            except Exception:
                log.exception("pushing to desktop sockets (%s) failed", key.split(":", 1)[0])

        task = asyncio.get_running_loop().create_task(step(), name=f"desktop-push:{key}")
        self._last[key] = task
        task.add_done_callback(lambda t: self._last.pop(key, None) if self._last.get(key) is t else None)

    async def close(self) -> None:
        await cancel_and_wait(list(self._last.values()), what="desktop pushes")


class DesktopNotifier:
    def __init__(self, redis: Redis, prefix: str, *, desktop: DesktopService, wallboard: WallboardService,
                 tickets: TicketService, throttle_s: float = 0.1, socket_queue: int = 64,
                 on_agent_event: AgentEventHook | None = None) -> None:
        self.redis, self.desktop, self.wallboard, self.tickets = redis, desktop, wallboard, tickets
        #: Also told of every agent event, in order per agent (the phones keep an agent whose
        #: phone is offline from becoming available by the end of a wrap-up).
        self.on_agent_event = on_agent_event
        self.channels = {"agents": f"{prefix}:events:agents", "tickets": f"{prefix}:events:tickets",
                         "figures": f"{prefix}:queues:figures"}
        self.throttle_s, self.socket_queue = throttle_s, socket_queue
        self._agents: dict[str, dict[Outlet, DesktopUser]] = {}
        self._boards: dict[tuple[str, str], set[Outlet]] = {}
        self._serial = _Serial()
        self._tasks: list[asyncio.Task[None]] = []
        self._render: asyncio.Task[None] | None = None
        self._render_again = False
        self._last_render = 0.0
        #: Renews the mark that keeps the queue figures published while a wallboard is open here.
        self._watching: asyncio.Task[None] | None = None
        #: Set once subscribed (tests wait for it before publishing).
        self.subscribed = asyncio.Event()

    # ----------------------------------------------------------------- life cycle

    def start(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._listen(), name="desktop-notifier"))

    async def stop(self) -> None:
        extra = [t for t in (self._render, self._watching) if t is not None]
        await cancel_and_wait([*self._tasks, *extra], what="the desktop notifier")
        self._tasks.clear()
        await self._serial.close()
        await self.close_sockets()

    async def close_sockets(self, _app: object = None) -> None:
        """Close every socket (also the ``on_shutdown`` hook of the web application)."""
        outlets = [o for by in self._agents.values() for o in by] + [o for s in self._boards.values() for o in s]
        self._agents.clear()
        self._boards.clear()
        await asyncio.gather(*(o.close() for o in outlets))

    # ----------------------------------------------------------------- sockets

    async def attach_agent(self, user: DesktopUser, ws: web.WebSocketResponse) -> Outlet:
        outlet = Outlet(ws, size=self.socket_queue)
        self._agents.setdefault(str(user.agent_id), {})[outlet] = user
        outlet.send(_dumps({"type": "state", **await self.desktop.state(user)}))
        return outlet

    async def attach_wallboard(self, ws: web.WebSocketResponse, node: str, root: str) -> Outlet:
        outlet = Outlet(ws, size=self.socket_queue)
        self._boards.setdefault((node, root), set()).add(outlet)
        self._watch()
        facts = await self.wallboard.facts()
        outlet.send(_dumps({"type": "wallboard", "at_ms": facts.at_ms, **self.wallboard.render(facts, node, root)}))
        return outlet

    async def detach(self, outlet: Outlet) -> None:
        for key, by in list(self._agents.items()):
            if by.pop(outlet, None) is not None and not by:
                del self._agents[key]
        for board, outlets in list(self._boards.items()):
            outlets.discard(outlet)
            if not outlets:
                del self._boards[board]
        await outlet.close()

    def _to_agent(self, agent_id: str, message: dict[str, Any]) -> None:
        text = _dumps(message)
        for outlet in list(self._agents.get(agent_id, {})):
            outlet.send(text)

    # ----------------------------------------------------------------- the subscription

    async def _listen(self) -> None:
        while True:
            try:
                await listen(self.redis, list(self.channels.values()), self._dispatch, self._on_subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis restarts: subscribe again
                log.warning("desktop notifier: subscription lost (%s); subscribing again", exc or type(exc).__name__)
                await asyncio.sleep(1.0)

    def _on_subscribed(self) -> None:
        if self.subscribed.is_set():
            self._catch_up()  # events may have been missed while the connection was down
        self.subscribed.set()

    def _dispatch(self, channel: str, data: Any) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("desktop notifier: a message on %s is not JSON", channel)
            return
        if channel == self.channels["figures"]:
            self.wallboard.set_figures(message)
            self.wallboard_changed()
        elif channel == self.channels["agents"]:
            self._agent_event(message)
        elif channel == self.channels["tickets"]:
            ticket_id = str(message.get("ticket_id", ""))
            self._serial.run(f"ticket:{ticket_id}", lambda: self._ticket_event(ticket_id, message))

    def _agent_event(self, message: dict[str, Any]) -> None:
        if message.get("type") == "agent.state":
            self.wallboard.agents_changed_ms = time.time_ns() // 1_000_000
            self.wallboard_changed()
        agent_id = str(message.get("agent_id", ""))
        hook = self.on_agent_event
        if hook is not None and agent_id and hook.wants(message):
            self._serial.run(f"agent-hook:{agent_id}", lambda: hook.agent_changed(message))
        if agent_id in self._agents:
            self._serial.run(f"agent:{agent_id}", lambda: self._push_agent(agent_id, message))

    async def _push_agent(self, agent_id: str, message: dict[str, Any]) -> None:
        users = self._agents.get(agent_id)
        if not users:
            return
        kind, call_id = message.get("type"), message.get("call_id")
        if kind in ("agent.state", "agent.phone"):  # agent.phone: Asterisk's view of their phone changed
            state = await self.desktop.state(next(iter(users.values())))
            self._to_agent(agent_id, {"type": "state", **state})
        elif kind == "call.offered" and call_id:
            await self.desktop.remember_call(agent_id, call_id)
            self._to_agent(agent_id, {"type": "call.offered", "card": await self.desktop.card(call_id)})
        elif kind in ("call.connected", "call.ended", "call.held", "call.resumed") and call_id:
            # held/resumed: the agent's phone put the call on hold (a SIP re-INVITE); the
            # server plays the caller music and the desktop shows the call as held.
            self._to_agent(agent_id, {"type": kind, "call_id": call_id})

    async def _ticket_event(self, ticket_id: str, message: dict[str, Any]) -> None:
        if not self._agents:
            return
        try:
            owner = (await self.tickets.get(ticket_id)).agent_id
        except TicketNotFound:
            return
        if owner and owner in self._agents:
            self._to_agent(owner, {"type": message.get("type"), "ticket_id": ticket_id,
                                   "platform_case_no": message.get("platform_case_no"),
                                   "problems": _worded(message.get("problems"))})

    def _catch_up(self) -> None:
        for agent_id in list(self._agents):
            # partial, not a lambda: each job keeps its own agent (a lambda would see the loop's last).
            self._serial.run(f"agent:{agent_id}",
                             functools.partial(self._push_agent, agent_id, {"type": "agent.state"}))
        self.wallboard_changed()

    # ----------------------------------------------------------------- the wallboards

    def _watch(self) -> None:
        """Keep the queue figures coming while this process has a wallboard open: they are
        published only while some process says so (``queues.figures``)."""
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._keep_watching(), name="wallboard-watch")

    async def _keep_watching(self) -> None:
        while self._boards:
            try:
                await mark_watched(self.redis, self.wallboard.queue_prefix)
            except Exception as exc:  # noqa: BLE001 - Redis away: the boards read their own snapshots
                log.warning("wallboard: could not ask for the queue figures (%s); trying again", exc)
            await asyncio.sleep(WATCHED_TTL_MS / 3000)

    def wallboard_changed(self) -> None:
        """Render soon: at once if nothing was rendered within ``throttle_s``, else once at the
        end of that interval, however many changes come meanwhile."""
        if not self._boards:
            return
        if self._render is not None and not self._render.done():
            self._render_again = True
            return
        delay = max(0.0, self._last_render + self.throttle_s - time.monotonic())
        self._render = asyncio.get_running_loop().create_task(self._render_soon(delay), name="wallboard-render")

    async def _render_soon(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        while True:
            self._render_again = False
            self._last_render = time.monotonic()
            try:
                await self._render_all()
            except Exception:
                log.exception("rendering the wallboards failed")
            if not self._render_again:
                return
            await asyncio.sleep(max(0.0, self._last_render + self.throttle_s - time.monotonic()))

    async def _render_all(self) -> None:
        if not self._boards:
            return
        facts = await self.wallboard.facts()
        for (node, root), outlets in list(self._boards.items()):
            text = _dumps({"type": "wallboard", "at_ms": facts.at_ms, **self.wallboard.render(facts, node, root)})
            for outlet in list(outlets):
                outlet.send(text)


def _worded(problems: Any) -> Any:
    """The platform's problems of a refused case, worded for the agent (as the API does)."""
    if not isinstance(problems, list):
        return problems
    worded: list[Any] = []
    for item in problems:
        if isinstance(item, dict):
            problem = for_agents(Problem.from_dict(item))
            worded.append({**problem.to_dict(), "message_en": problem.message_en})
        else:
            worded.append(item)
    return worded
