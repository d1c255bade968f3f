"""Queue logic for calls: route a call to its jurisdiction's queue, climb the levels, offer
agents, connect them, announce positions, run wrap-ups.

:class:`QueueService` is the IVR's :class:`~ivr.flow.Router` and the service the queue states
use (:class:`~queues.flow.CallQueues`). Offers that arise outside a
call's own events (an agent becoming free) reach the call as a :class:`QueueOffered` event in
the call's FIFO, so a call never handles two inputs at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis

from ari.dispatcher import Dispatcher
from ari.errors import CALL_GONE, AriError, AriNotFound, AriUnavailable
from ari.models import Event
from ari.rest import AriRest
from calls.call import Call
from calls.flow import State
from calls.services import CallService
from calls.store import CallState
from core.beat import to_the_beat
from core.hours import is_open
from core.jurisdictions import JurisdictionTree
from core.lean_redis import riding
from core.settings import QueueSettings
from core.tasks import BackgroundTasks, cancel_and_wait
from core.vocabulary import utcnow
from queues.engine import PRIORITY_MAX, Agent, Offer, QueueEngine, QueueError, WaitingCall, Write
from queues.figures import FiguresPublisher
from queues.flow import AfterHours, AskCity, CallingBack, Connecting, InQueue
from queues.kept_bridges import AgentBridges, bridge_name
from queues.resolve import JurisdictionResolver

log = logging.getLogger(__name__)

#: Markers of the agent legs' channel ids (``<caller channel>-agent-<attempt>``) and of the
#: conversation bridges (``<caller channel>-call-<attempt>``, the attempt of the leg it was made
#: for): a restarted process finds orphans by them. Every attempt at ringing an agent has an
#: attempt token never used before (this process's run id and a serial), so a bridge or leg
#: that a failed attempt could not remove can never block the next attempt (``409 Bridge
#: already exists``) -- it only waits for the sweep.
AGENT_MARK = "-agent-"
CALL_BRIDGE_MARK = "-call-"
#: Bridges made for an agent ahead of their first call (``agent-call-<run>-<serial>``): named as
#: a conversation bridge whose "caller" is never a channel, so that the same sweep applies.
PREPARED_BRIDGE_CALLER = "agent"
#: The one bridge id per call of earlier versions (``<caller channel>-call``): still swept.
LEGACY_CALL_BRIDGE_SUFFIX = "-call"
#: Seconds an agent whose phone answered, but to whom the call could not be put through, waits
#: before the next offer (see :meth:`QueueService.give_back`).
CONNECT_FAILED_PAUSE_S = 3.0
#: Seconds between tries at removing what a failed clean-up left (besides every resync).
LEFTOVER_SWEEP_EVERY_S = 30.0
#: Longest sleep between looks at the due wrap-ups and callback retries. Between them the
#: loop sleeps until the earliest one is due, so it is exact for what is known when it looks,
#: and what this process makes due meanwhile wakes it (``QueueEngine.schedule``); this bounds
#: how late one that another process set (and could not end itself: it died) is found. It was a
#: fixed 0.2 s tick with two reads: ten Redis round trips a second on an idle server, then 0.5 s,
#: then 2 s (issue 15); now the process's common beat (core.beat), with the heartbeat's.
DUE_LOOK_MAX_S = 4.0
#: The pause before looking again when more may be due than one look saw: all the wrap-ups it
#: read were due, or a callback retry was (only the first retry is read). A pause, not at once:
#: entries that stay due for whatever reason must not make the loop spin.
DUE_AGAIN_S = 0.05
#: The wrap-ups one look reads, earliest first: those due and, after them, the first one not yet
#: due, whose time is the next look's (one round trip per wake-up, none more when all is done).
DUE_LOOK_WRAP_UPS = 64
#: A look for a known due time comes this much after it: the clock a due time is read against
#: counts whole milliseconds and the loop's timers may fire a little early, so a look right on
#: time found a third of the wrap-ups not yet due and slept again for under a millisecond (a
#: wake-up of its own, issue 15: 20 in 60 calls on the real switch).
DUE_MARGIN_S = 0.002
#: A transferred caller has waited already: they go ahead of everyone who has not.
TRANSFER_PRIORITY = PRIORITY_MAX


def call_bridge_caller(bridge_id: str) -> str | None:
    """The caller's channel id in a conversation bridge's id; None for any other bridge."""
    caller, mark, attempt = bridge_id.rpartition(CALL_BRIDGE_MARK)
    if mark and caller and attempt:
        return caller
    caller = bridge_id.removesuffix(LEGACY_CALL_BRIDGE_SUFFIX)
    return caller if caller and caller != bridge_id else None


# --- what happens to agents, for their desktops and the wallboard --------------------------------


class AgentEvents:
    """Publishes the agent events of the desktop contract on ``<prefix>:events:agents``:
    ``{"type": "agent.state", "agent_id", "state", "reason", "call_id"}`` and
    ``{"type": "call.offered" | "call.connected" | "call.ended", "agent_id", "call_id", "channel_id"}``,
    and ``call.held`` / ``call.resumed`` (same fields) when the agent's own phone puts the
    call on hold and takes it back.

    :meth:`emit` never waits: the call path must not wait for a courtesy to the desktops.
    One task (:meth:`run`) publishes the messages in the order they were emitted (pipelined),
    so a desktop never sees "on_call" before "ringing". Events are news, not the truth: a
    desktop that missed some reads the state again; when Redis cannot take them, or more than
    ``max_pending`` wait, they are dropped with a warning.
    """

    def __init__(self, redis: Redis, prefix: str, *, max_pending: int = 10_000, batch: int = 256) -> None:
        self._redis = redis
        self.channel = f"{prefix}:events:agents"
        self._pending: deque[str] = deque()
        self._max_pending, self._batch = max_pending, batch
        self._wake = asyncio.Event()
        self.dropped = 0
        #: The client's ride-along publish when it has one (core/lean_redis.py), else the task's pipeline.
        self._rider = riding(redis)
        self._publish_soon = self._rider.publish_soon if self._rider is not None else None

    def agent_state(self, agent_id: str, state: str, *, reason: str | None = None, call_id: str | None = None) -> None:
        self.emit(_agent_state(agent_id, state, reason=reason, call_id=call_id))

    def call(self, kind: str, agent_id: str, call_id: str, channel_id: str | None) -> None:
        self.emit(_call_event(kind, agent_id, call_id, channel_id))

    def writes(self, *messages: dict[str, Any]) -> list[Write]:
        """``messages`` as writes a queue script makes with its change (published only if it
        makes it, in the same write as the script: see :data:`queues.engine.Write`)."""
        return [("PUBLISH", self.channel, orjson.dumps(message).decode()) for message in messages]

    def emit(self, message: dict[str, Any]) -> None:
        text = orjson.dumps(message).decode()  # compact, UTF-8 as it is
        if self._publish_soon is not None:
            # In the same write as the call's next Redis command (its state saved, its next
            # script): no round trip of its own, in the order emitted (core/lean_redis.py).
            self._publish_soon(self.channel, text)
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("agent events: %d dropped, Redis does not keep up", self.dropped)
            return
        self._pending.append(text)
        self._wake.set()

    async def send_now(self) -> None:
        """What was emitted and waits to ride goes now, in a write of its own without a reply,
        for a caller with no command of its own to follow (the wrap-up loop): riding, it would
        go alone a moment later, the process woken again for it (issue 15)."""
        if self._rider is not None:
            try:
                await self._rider.tell()
            except Exception as exc:  # noqa: BLE001 - news for desktops; the state is in the engine
                log.warning("agent events: not sent now (%s); they go with the next command",
                            exc or type(exc).__name__)

    async def run(self) -> None:
        """Publish until cancelled; what is pending when cancelled is sent first (bounded by the caller)."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.flush()
        finally:
            with suppress(Exception):
                await asyncio.shield(self.flush())

    async def flush(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - news for desktops; the state is in the engine
                self.dropped += len(batch)
                log.warning("agent events: %d not published: %s", len(batch), exc or type(exc).__name__)


def _agent_state(agent_id: str, state: str, *, reason: str | None = None, call_id: str | None = None) -> dict[str, Any]:
    return {"type": "agent.state", "agent_id": agent_id, "state": state, "reason": reason or None,
            "call_id": call_id or None}


def _call_event(kind: str, agent_id: str, call_id: str, channel_id: str | None) -> dict[str, Any]:
    return {"type": f"call.{kind}", "agent_id": agent_id, "call_id": call_id, "channel_id": channel_id}


class AnnouncingEngine(QueueEngine):
    """The queue engine that also tells :class:`AgentEvents` what happened to agents.

    Every change of an agent's state goes through the engine, whoever asks for it (the call
    flows, the wrap-up loop, the desktop), so this is the one place that sees them all. An
    event is emitted only after the engine's script succeeded, with what its answer says
    (an offer rings an agent). Where the answer does not name the call's agent or channel
    (hung up, removed), the call is read just before, in the script's own pipeline.
    """

    def __init__(self, redis: Redis, prefix: str, *, events: AgentEvents, **options: Any) -> None:
        super().__init__(redis, prefix, **options)
        self.events = events

    def _offered(self, offer: Offer | None) -> Offer | None:
        if offer is not None:
            self.events.agent_state(offer.agent_id, "ringing", call_id=offer.call_id)
            self.events.call("offered", offer.agent_id, offer.call_id, offer.channel_id)
        return offer

    async def enqueue_resuming(self, call: WaitingCall, place_key: str | None) -> tuple[Offer | None, bool]:
        offer, kept = await super().enqueue_resuming(call, place_key)
        return self._offered(offer), kept

    async def overflow(self, call_id: str, to_jurisdiction: str) -> Offer | None:
        return self._offered(await super().overflow(call_id, to_jurisdiction))

    async def login(self, agent: Agent) -> None:
        await super().login(agent)
        now = await self.agent(agent.agent_id)  # login keeps a busy agent's state: say which
        if now is not None:
            self.events.agent_state(agent.agent_id, now["state"].value, reason=now["reason"], call_id=now["call_id"])

    async def logout(self, agent_id: str) -> None:
        await super().logout(agent_id)
        self.events.agent_state(agent_id, "offline")

    async def set_available(self, agent_id: str) -> Offer | None:
        offer = await super().set_available(agent_id)
        if offer is None:
            self.events.agent_state(agent_id, "available")
        return self._offered(offer)

    async def end_wrap_up(self, agent_id: str) -> tuple[bool, Offer | None]:
        ended, offer = await super().end_wrap_up(agent_id)
        if ended and offer is None:
            self.events.agent_state(agent_id, "available")
        return ended, self._offered(offer)

    async def set_break(self, agent_id: str, reason: str) -> None:
        await super().set_break(agent_id, reason)
        self.events.agent_state(agent_id, "break", reason=reason)

    async def answered(self, call_id: str, agent_id: str, *, then: Iterable[Write] = (),
                       channel_id: str | None = None) -> None:
        """``channel_id``: the call's, known to the caller: see :meth:`_announced`."""
        await self._announced(lambda writes: super(AnnouncingEngine, self).answered(call_id, agent_id, then=writes),
                              call_id, then, channel_id,
                              lambda channel: (_agent_state(agent_id, "on_call", call_id=call_id),
                                               _call_event("connected", agent_id, call_id, channel)))

    async def ring_no_answer(self, call_id: str, agent_id: str) -> Offer | None:
        parties = self.parties_soon(call_id)
        offer = await super().ring_no_answer(call_id, agent_id)
        channel_id, _ = await parties
        self.events.call("ended", agent_id, call_id, channel_id)
        self.events.agent_state(agent_id, "break", reason="no_answer")
        return self._offered(offer)

    async def connect_failed(self, call_id: str, agent_id: str, pause_s: float) -> Offer | None:
        parties = self.parties_soon(call_id)
        offer = await super().connect_failed(call_id, agent_id, pause_s)
        channel_id, _ = await parties
        self.events.call("ended", agent_id, call_id, channel_id)
        self.events.agent_state(agent_id, "wrap_up", reason="connect_failed")
        return self._offered(offer)

    async def hung_up(self, call_id: str, agent_id: str, *, then: Iterable[Write] = (),
                      channel_id: str | None = None) -> None:
        """``channel_id``: as for :meth:`answered`."""
        await self._announced(lambda writes: super(AnnouncingEngine, self).hung_up(call_id, agent_id, then=writes),
                              call_id, then, channel_id,
                              lambda channel: (_call_event("ended", agent_id, call_id, channel),
                                               _agent_state(agent_id, "wrap_up", call_id=call_id)))

    async def _announced(self, change: Callable[[list[Write]], Awaitable[None]], call_id: str,
                         then: Iterable[Write], channel_id: str | None,
                         news: Callable[[str | None], tuple[dict[str, Any], ...]]) -> None:
        """Make ``change`` (with the writes ``then``) and publish its ``news`` (of the call's
        channel): where the caller names the channel, in the script itself, with the change and
        only if it is made; else after it, the channel read in the script's own round trip."""
        if channel_id is not None:
            await change([*then, *self.events.writes(*news(channel_id))])
            return
        parties = self.parties_soon(call_id)  # in the script's own round trip, read before it
        await change(list(then))
        channel, _ = await parties
        for message in news(channel):
            self.events.emit(message)

    async def remove(self, call_id: str, reason: str) -> bool:
        parties = self.parties_soon(call_id)
        removed = await super().remove(call_id, reason)
        channel_id, agent_id = await parties
        if removed and agent_id:  # the caller left while an agent's phone rang or they talked
            self.events.call("ended", agent_id, call_id, channel_id)
            self.events.agent_state(agent_id, "wrap_up", call_id=call_id)
        return removed


@dataclass(frozen=True, slots=True)
class QueueOffered(Event):
    """An agent was assigned to a waiting call (posted locally, never sent by Asterisk)."""

    key: str
    offer: Offer

    def route_key(self) -> str | None:
        return self.key


def _waiting(data: CallState, code: str, *, priority: int = 0, enqueued_at_ms: int | None = None) -> WaitingCall:
    """The engine's view of a call to queue at ``code`` on the call's line."""
    return WaitingCall(
        call_id=data.call_id, channel_id=data.channel_id, jurisdiction=code, line=data.business_line,
        priority=priority,
        # Agents speak locales (zh-CN); the call carries Asterisk's spelling (zh_CN).
        language=data.language.replace("_", "-"), enqueued_at_ms=enqueued_at_ms,
    )


class CallRecorder(Protocol):
    """Records conversations (``recordings.capture``): a segment per bridging of caller and agent."""

    async def start(self, data: CallState, bridge_id: str) -> None: ...
    async def stop(self, call_id: str) -> bool: ...


class QueueService:
    def __init__(self, engine: QueueEngine, tree: JurisdictionTree, resolver: JurisdictionResolver, ari: AriRest,
                 dispatcher: Dispatcher, app: str, settings: QueueSettings,
                 recorder: CallRecorder | None = None, *,
                 connect_failed_pause_s: float = CONNECT_FAILED_PAUSE_S) -> None:
        self.engine, self.tree, self.resolver = engine, tree, resolver
        self.ari, self.dispatcher, self.app, self.settings = ari, dispatcher, app, settings
        self.recorder = recorder
        self.connect_failed_pause_s = connect_failed_pause_s
        # Attempt tokens: unique per process start (the run id), cheap to make (a serial).
        self._run = uuid.uuid4().hex[:6]
        self._serial = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        #: Each agent's bridge, kept between their calls (two requests a call fewer).
        self.bridges = AgentBridges()
        #: Agents' bridges made ahead, behind a login's answer or a resync (held until done).
        self._bridge_work = BackgroundTasks("the agents' bridges")
        self._preparing: asyncio.Task[None] | None = None

    # --- the router -------------------------------------------------------------------------

    async def route(self, call: Call) -> State:
        """The IVR has decided: queue the call where it belongs, or hand it to an agent now.

        When neither the dialled line nor the caller's number says where the caller is, they
        are asked for their city first (once).
        """
        data = call.data
        if not self.open_now():
            return AfterHours()
        where = self.resolver.resolve(area_code=data.area_code, caller_number=data.caller_phone)
        if where.source == "default" and data.jurisdiction is None:
            return AskCity(self)
        return await self.enqueue(call, data.jurisdiction or where.code, data.jurisdiction_source or where.source)

    def open_now(self) -> bool:
        h = self.settings.hours
        return is_open(datetime.now(UTC), timezone=h.timezone, days=h.days, opens=h.opens, closes=h.closes)

    async def enqueue(self, call: Call, code: str, source: str) -> State:
        data = call.data
        data.jurisdiction, data.jurisdiction_source = code, source
        offer, kept = await self.engine.enqueue_resuming(_waiting(data, code), self._place_key(call))
        if kept:
            log.info("call %s: the caller called back and gets their earlier place", data.call_id)
        offer = offer or await self._skip_unstaffed(call)
        log.info("call %s queued for %s (%s) on %s", data.call_id, code, source, data.business_line)
        return Connecting.to(self, call, offer) if offer is not None else InQueue(self)

    async def leave(self, call: Call) -> None:
        """The caller hung up while queued or while an agent's phone rang: out of the queues."""
        await self.engine.remove(call.data.call_id, "abandoned")

    async def transfer(self, call: Call, agent_id: str, jurisdiction: str, line: str, step: str) -> State:
        """In the call's FIFO: the agent's part ends (wrap-up), the caller is queued again at
        ``jurisdiction`` and ``line`` ahead of the callers not yet served, and the agent's leg and
        the conversation's bridge go. ``step`` is what the call's menu path records."""
        data = call.data
        leg, bridge = data.agent_channel, data.call_bridge
        # The agent's segment ends with their part of the conversation (stopped before its bridge
        # goes, so that Asterisk finishes the file and the recorder keeps it).
        await self.stop_recording(call)
        await self.engine.hung_up(data.call_id, agent_id)
        data.agent_id = data.agent_channel = data.call_bridge = None
        data.jurisdiction, data.jurisdiction_source, data.business_line = jurisdiction, "transferred", line
        data.menu_path.append(step)
        try:
            offer = await self.engine.enqueue(_waiting(data, jurisdiction, priority=TRANSFER_PRIORITY))
        except QueueError:
            log.exception("call %s: queueing the transfer failed", data.call_id)
            offer = None
        if bridge:
            # The caller is still in it: destroying it lets them go (one request, as
            # removing them would be); a transfer is rare, the agent gets a new one.
            self.bridges.forget(bridge)
            await self.destroy_bridge_quietly(bridge)
        if leg:
            await self.hangup_quietly(leg)
        log.info("call %s transferred by agent %s to %s on %s", data.call_id, agent_id, jurisdiction, line)
        return Connecting.to(self, call, offer) if offer is not None else InQueue(self)

    # --- callbacks: the caller hangs up, keeps their place, and is called when it is their turn ------

    def callback_possible(self, call: Call) -> bool:
        digits = "".join(ch for ch in call.data.caller_phone if ch.isdigit())
        return self.settings.callback_offer and len(digits) >= 7

    def _callback_key(self, call_id: str) -> str:
        return f"{self.engine.prefix}:callback:{call_id}"

    async def book_callback(self, call: Call) -> None:
        """Keep everything about the call, so that any process can call the caller back."""
        await self.engine.redis.hset(self._callback_key(call.data.call_id),
                                     mapping={"state": call.data.to_json(), "attempts": 0})
        log.info("call %s: the caller asked to be called back", call.data.call_id)

    def callback_endpoint(self, call: Call) -> str:
        number = "".join(ch for ch in call.data.caller_phone if ch.isdigit())
        return f"PJSIP/{number}@{self.settings.callback_trunk}"

    async def call_back(self, offer: Offer, calls: CallService) -> bool:
        """An agent was offered a call whose caller waits for our call: ring the caller."""
        raw = await self.engine.redis.hget(self._callback_key(offer.call_id), "state")
        if raw is None:
            return False
        state = CallState.from_json(raw)
        attempt = await self.engine.redis.hincrby(self._callback_key(offer.call_id), "attempts", 1)
        state.channel_id = f"{offer.channel_id}-cb-{attempt}"
        state.state, state.ended_at, state.outcome, state.hangup_cause = "calling_back", None, None, None
        await calls.adopt(state, CallingBack(self, agent_id=offer.agent_id, endpoint=offer.endpoint))
        return True

    async def callback_failed(self, call: Call) -> None:
        """The caller did not answer: the agent is freed; the call is tried again later, in its place."""
        key = self._callback_key(call.data.call_id)
        before = await self.engine.call(call.data.call_id)
        await self.engine.remove(call.data.call_id, "callback")
        attempts = int(await self.engine.redis.hget(key, "attempts") or 0)
        if before is None or attempts >= self.settings.callback_attempts:
            await self.engine.redis.delete(key)
            log.info("call %s: the caller could not be called back", call.data.call_id)
            return
        # The retry waits in Redis, not in this process: whichever process runs next requeues it.
        retry = json.dumps({k: before[k] for k in ("call_id", "channel_id", "jurisdiction", "line", "language",
                                                   "enqueued_at_ms")})
        due = self.engine.clock_ms() + round(self.settings.callback_retry_s * 1000)
        await self.engine.redis.zadd(self._retry_key(), {retry: due})
        self.engine.schedule(due)

    def _retry_key(self) -> str:
        return f"{self.engine.prefix}:callback-retries"

    async def _requeue_due_callbacks(self) -> None:
        for raw in await self.engine.redis.zrangebyscore(self._retry_key(), "-inf", self.engine.clock_ms()):
            if not isinstance(raw, bytes | str):
                continue  # members only: no scores were asked for
            if await self.engine.redis.zrem(self._retry_key(), raw):  # claimed by this process only
                self.deliver(await self.engine.enqueue(WaitingCall(**json.loads(raw))))

    # --- a caller who gave up and calls again keeps their place -----------------------------------

    def _place_key(self, call: Call) -> str | None:
        number = "".join(ch for ch in call.data.caller_phone if ch.isdigit())
        if not number or not self.settings.resume_place_min:
            return None  # an anonymous caller cannot be recognised
        return f"{self.engine.prefix}:place:{number}:{call.data.business_line}"

    async def keep_place(self, call: Call) -> None:
        """The caller hung up while waiting: remember when they first queued, for a while."""
        key = self._place_key(call)
        state = await self.engine.call(call.data.call_id)
        if key is None or state is None or state["state"] != "waiting":
            return
        await self.engine.redis.set(key, state["enqueued_at_ms"], px=round(self.settings.resume_place_min * 60_000),
                                    nx=True)  # nx: calling back twice keeps the first place

    async def _levels(self, call: Call) -> list[str]:
        """The jurisdictions whose queues the call is in, in the order it entered them."""
        state = await self.engine.call(call.data.call_id)
        return list(state["queues"]) if state else []

    async def _skip_unstaffed(self, call: Call) -> Offer | None:
        """Climb at once past levels where nobody of the call's line is logged in."""
        levels = await self._levels(call)
        while levels and not await self.engine.staffed(levels[-1], call.data.business_line):
            parent = self.tree.get(levels[-1]).parent
            if parent is None:
                return None
            offer = await self.engine.overflow(call.data.call_id, parent)
            if offer is not None:
                return offer
            levels.append(parent)
        return None

    async def overflow_next(self, call: Call) -> Offer | None:
        """The wait at this level is over: offer the call one level up as well (and beyond,
        where nobody is logged in)."""
        levels = await self._levels(call)
        if not levels:
            return None
        parent = self.tree.get(levels[-1]).parent
        if parent is None:
            return None
        log.info("call %s overflows from %s to %s", call.data.call_id, levels[-1], parent)
        offer = await self.engine.overflow(call.data.call_id, parent)
        return offer or await self._skip_unstaffed(call)

    async def overflow_delay(self, call: Call) -> float | None:
        """Seconds until the next overflow from the level the call has climbed to; None at the top."""
        levels = await self._levels(call)
        if not levels or self.tree.get(levels[-1]).parent is None:
            return None
        steps = self.settings.overflow_after_s
        return steps[min(len(levels) - 1, len(steps) - 1)]

    # --- waiting --------------------------------------------------------------------------------

    async def announce(self, call: Call) -> None:
        """Tell a waiting caller their position and, when known, the estimated wait."""
        try:
            position, wait_s = await self.engine.position(call.data.call_id)
        except LookupError:
            return
        if position <= 0:
            return
        prompts = ["callers_ahead_before", f"number:{position - 1}", "callers_ahead_after"]
        if wait_s is not None:
            prompts += ["estimated_wait_before", f"number:{max(1, round(wait_s / 60))}", "estimated_wait_after"]
        if self.callback_possible(call):
            prompts.append("callback_offer")
        await call.stop_music()
        await call.play(*prompts)

    # --- agents' legs -----------------------------------------------------------------------------

    def agent_leg_id(self, call: Call) -> str:
        """A new attempt's agent leg: ``<caller channel>-agent-<attempt>``, never used before."""
        return f"{call.key}{AGENT_MARK}{self._attempt()}"

    def _attempt(self) -> str:
        """A token never used before: this process's run id and a serial."""
        return f"{self._run}-{next(self._serial)}"

    def bridge_id_for(self, call: Call) -> str:
        """A bridge made for the attempt whose agent leg is on the call: ``<caller>-call-<attempt>``.
        One connect per leg, and a leg's attempt token is never reused, so neither is the bridge id
        (the agent then keeps it for their next calls: :mod:`queues.kept_bridges`)."""
        caller, mark, attempt = (call.data.agent_channel or "").rpartition(AGENT_MARK)
        if not (mark and caller == call.key and attempt):
            attempt = self._attempt()
        return f"{call.key}{CALL_BRIDGE_MARK}{attempt}"

    def alias(self, call: Call, key: str) -> None:
        """Events of a channel (or ``bridge:<id>``) we make for the call go to the call's FIFO."""
        self.dispatcher.alias(key, call.key)

    async def connect(self, call: Call, *, as_state: str) -> bool:
        """The agent answered: caller and agent into the agent's bridge (made now if they have
        none yet); False if that failed. ``as_state``: the call's state once connected, stored
        with the engine's change.

        Any step that fails or times out fails the attempt: its agent leg is hung up and the
        bridge destroyed, never used again (:meth:`_abandon`); the flow then gives the agent back
        and the caller their place (:meth:`give_back`). Only the recording, once they talk, is
        best effort.
        """
        data = call.data
        leg = data.agent_channel or ""
        bridge_id, make = self.bridges.take(data.agent_id or "", self.bridge_id_for(call))
        self.alias(call, f"bridge:{bridge_id}")
        name = bridge_name(data.agent_id or "")
        making: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            ("creating the bridge", lambda: self.ari.create_bridge(bridge_id=bridge_id, name=name)),
        ) if make else ()
        steps: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
            *making,
            # A prompt that already finished is fine (Call.stop_prompt); anything else is not.
            ("stopping the prompt", call.stop_prompt),
            # Not Call.stop_music, which hides every error: a caller whose music cannot be
            # stopped (gone, or Asterisk not answering) cannot be bridged either.
            ("stopping the music", lambda: self._stop_music(call)),
            # Both in one request (issue 15: one of a whole call's eleven).
            ("adding the caller and the agent", lambda: self.ari.add_channel(bridge_id, call.key, leg)),
        )
        for what, step in steps:
            try:
                await step()
            except AriError as exc:
                log.warning("call %s: connecting agent %s failed %s (bridge %s, leg %s): %s", data.call_id,
                            data.agent_id, what, bridge_id, leg, exc)
                # A bridge whose creation got no answer may yet be made by Asterisk.
                self.bridges.forget(bridge_id)
                await self._abandon(call, bridge_id, leg, bridge_may_appear=what == "creating the bridge"
                                    and isinstance(exc, AriUnavailable))
                return False
        data.call_bridge = bridge_id
        data.answered_at = data.answered_at or utcnow()
        await self._with_state(call, as_state, lambda then, news: self.engine.answered(
            data.call_id, data.agent_id or "", then=then, **news))
        log.info("call %s connected to agent %s", data.call_id, data.agent_id)
        # From answer to hang-up; after a transfer, the next agent's part is a new segment.
        await self._record(call, bridge_id)
        return True

    async def _with_state(self, call: Call, state: str,
                          change: Callable[[list[Write], dict[str, str]], Awaitable[None]]) -> None:
        """The engine's ``change`` storing the call's state as ``state``, and the agents' news,
        in its own script: the queue's move and the call's state are stored together or not at
        all (a crash between the two left a call stored as ringing that the queues had connected,
        which a restarted process then failed to give back), in one write to Redis instead of
        two (issue 15). ``change`` gets the script's writes and, for an engine that announces,
        the call's channel as keyword arguments (``channel_id``). The flow's own save of that
        same state is then not written again (``CallStateStore.stored_by_script``). A call this
        process has not stored yet is saved by the flow as before (it joins the live calls there)."""
        store = call.svc.store
        if not call.stored:
            await change([], {})
            return
        write = store.write(replace(call.data, state=state))
        await change([write], {"channel_id": call.key} if isinstance(self.engine, AnnouncingEngine) else {})
        store.stored_by_script(write)

    async def _stop_music(self, call: Call) -> None:
        """Stop the caller's music before the bridge; a caller put through without waiting has
        none (no request: one of the fourteen of a whole call, bench/ivr.py)."""
        if call.music_on is False:
            return
        await call.end_music()

    async def _abandon(self, call: Call, bridge_id: str, leg: str, *, bridge_may_appear: bool) -> None:
        """Undo a failed attempt at connecting: the agent's leg is hung up (their phone answered,
        and nobody else would ever hang it up) and the attempt's bridge destroyed, side by side
        (each may take a whole request timeout when Asterisk is struggling). What cannot be
        removed is logged with its id and left to the sweep (:meth:`_sweep_leftovers`)."""
        await asyncio.gather(self.hang_up_leg(call, leg),
                             self.destroy_bridge(call, bridge_id, missing_ok=not bridge_may_appear))
        self.dispatcher.unalias(f"bridge:{bridge_id}")

    async def ring_no_answer(self, call: Call, agent_id: str) -> Offer | None:
        """The agent's phone rang out (or could not ring): they go on break, the caller gets the
        next offer, if any."""
        return await self.engine.ring_no_answer(call.data.call_id, agent_id)

    async def hung_up(self, call: Call, agent_id: str) -> None:
        """The conversation is over: the agent goes to wrap-up, the call's state as it is (ended,
        by now) stored with it (:meth:`_with_state`)."""
        await self._with_state(call, call.data.state, lambda then, news: self.engine.hung_up(
            call.data.call_id, agent_id, then=then, **news))

    async def give_back(self, call: Call, agent_id: str) -> Offer | None:
        """The agent's phone answered (or may have) but the call could not be put through to
        them: not their doing, so no break for "no answer". They pause a few seconds in a wrap-up
        (reason "connect_failed") that ends by itself, keeping their place in the idle order,
        rather than being available at once: the failure means Asterisk is struggling right now
        (an immediate offer to the same agent would add requests to it and likely fail the same
        way), and if their leg could not be hung up their phone is still busy with it. The
        caller goes back to the head of their queues and is offered to the next free agent now.
        """
        data = call.data
        try:
            offer = await self.engine.connect_failed(data.call_id, agent_id, self.connect_failed_pause_s)
        except QueueError as exc:  # e.g. the call was removed meanwhile: nothing to give back
            log.warning("call %s: giving agent %s back failed: %s", data.call_id, agent_id, exc)
            return None
        log.info("call %s: could not be put through to agent %s; agent given back, call back at the head",
                 data.call_id, agent_id)
        return offer

    async def release_stray(self, call: Call, channel_id: str) -> None:
        """An agent leg of this call that is not the current one entered Stasis (Asterisk made it
        late, after its originate timed out): hang it up, an agent must not sit on a dead line."""
        if AGENT_MARK in channel_id and channel_id != call.data.agent_channel:
            log.info("call %s: hanging up agent leg %s of an abandoned attempt", call.data.call_id, channel_id)
            await self.hang_up_leg(call, channel_id)

    async def agent_held(self, call: Call, held: bool) -> None:
        """The agent's own phone put the call on hold (or took it back): in a bridge Asterisk plays
        the caller nothing by itself, so the caller gets music on hold until the agent is back."""
        data = call.data
        if held:
            await call.start_music()
        else:
            await call.stop_music()
        log.info("call %s: agent %s %s the call from their phone", data.call_id, data.agent_id,
                 "held" if held else "resumed")
        if isinstance(self.engine, AnnouncingEngine) and data.agent_id:
            self.engine.events.call("held" if held else "resumed", data.agent_id, data.call_id, call.key)

    async def _record(self, call: Call, bridge_id: str) -> None:
        if self.recorder is None:
            return
        try:
            await self.recorder.start(call.data, bridge_id)
        except Exception:
            log.exception("call %s: starting the recording failed", call.data.call_id)

    async def stop_recording(self, call: Call) -> bool:
        """Stop the call's recording; False if Asterisk may still be recording its bridge."""
        if self.recorder is None or not call.data.call_bridge:
            return True
        try:
            return await self.recorder.stop(call.data.call_id)
        except Exception:
            log.exception("call %s: stopping the recording failed", call.data.call_id)
            return False

    async def end_conversation(self, call: Call) -> None:
        """The caller is gone from a connected call: the recording stops, the agent's leg is hung
        up, and the agent keeps the bridge for their next call when all of that went cleanly
        (else it is destroyed: nothing of this call may be in it when the next one joins); then
        the agent goes to wrap-up."""
        data = call.data
        # Stopped first, so that the file ends with the conversation, not with our clean-up.
        clean = await self.stop_recording(call)
        if data.agent_channel:
            clean = await self.hang_up_leg(call, data.agent_channel) and clean
        if data.call_bridge:
            if not (clean and self.bridges.release(data.call_bridge)):
                self.bridges.forget(data.call_bridge)
                await self.destroy_bridge(call, data.call_bridge)
        if data.agent_id:
            await self.hung_up(call, data.agent_id)

    async def hang_up_leg(self, call: Call, channel_id: str) -> bool:
        """Hang up one of the call's agent legs; already gone is fine, any other failure is
        logged with the id and left to the sweep (False)."""
        if not channel_id:
            return True
        try:
            await self.ari.hangup(channel_id)
        except CALL_GONE:
            pass
        except AriError as exc:
            log.error("call %s: agent leg %s could not be hung up (%s); left for the sweep", call.data.call_id,
                      channel_id, exc)
            await self._leave_for_sweep("channel", channel_id)
            return False
        return True

    async def destroy_bridge(self, call: Call, bridge_id: str, *, missing_ok: bool = True) -> None:
        """Destroy one of the call's bridges. Already gone is fine when ``missing_ok`` (else it
        may yet appear: its creation got no answer); any failure is logged with the id and the
        bridge left to the sweep."""
        try:
            await self.ari.destroy_bridge(bridge_id)
        except AriNotFound:
            if not missing_ok:
                log.warning("call %s: bridge %s not found; Asterisk may still make it, left for the sweep",
                            call.data.call_id, bridge_id)
                await self._leave_for_sweep("bridge", bridge_id)
        except AriError as exc:
            log.error("call %s: bridge %s could not be destroyed (%s); left for the sweep", call.data.call_id,
                      bridge_id, exc)
            await self._leave_for_sweep("bridge", bridge_id)

    async def hangup_quietly(self, channel_id: str) -> None:
        with suppress(AriError):
            await self.ari.hangup(channel_id)

    async def destroy_bridge_quietly(self, bridge_id: str) -> None:
        with suppress(AriError):
            await self.ari.destroy_bridge(bridge_id)

    # --- agents -------------------------------------------------------------------------------------

    async def login(self, agent: Agent) -> None:
        """Into the queues (on a break until available); their bridge is made meanwhile, after
        the answer (a struggling switch must not hold up the desktop's login request)."""
        await self.engine.login(agent)
        if not self.bridges.has(agent.agent_id):
            self._bridge_work.spawn(self.prepare_bridges([agent.agent_id]),
                                    name=f"queue-agent-bridge:{agent.agent_id}")

    async def prepare_bridges(self, agent_ids: Iterable[str]) -> None:
        """Make the bridges of agents who have none here yet, so that their first call is put
        through without one more request. One at a time (gentle on a switch that just came
        back); one that cannot be made is made at the agent's call instead."""
        for agent_id in agent_ids:
            if self.bridges.has(agent_id):
                continue
            bridge_id = f"{PREPARED_BRIDGE_CALLER}{CALL_BRIDGE_MARK}{self._attempt()}"
            self.bridges.making(bridge_id)
            try:
                await self.ari.create_bridge(bridge_id=bridge_id, name=bridge_name(agent_id))
            except AriError as exc:
                self.bridges.forget(bridge_id)
                log.warning("agent %s: their bridge could not be made ahead (%s); made at their call", agent_id, exc)
                if isinstance(exc, AriUnavailable):  # no answer: Asterisk may make it yet
                    await self._leave_for_sweep("bridge", bridge_id)
                continue
            if not self.bridges.prepared(agent_id, bridge_id):
                await self.destroy_bridge_quietly(bridge_id)

    async def available(self, agent_id: str) -> Offer | None:
        """The agent is ready for a call; the offer (if any) is on its way to the call."""
        offer = await self.engine.set_available(agent_id)
        self.deliver(offer)
        return offer

    def deliver(self, offer: Offer | None) -> None:
        if offer is not None:
            self.dispatcher.post(QueueOffered(type="QueueOffered", application=self.app, timestamp="",
                                              key=offer.channel_id, offer=offer))

    async def refuse(self, offer: Offer) -> None:
        """An offer reached no waiting call here (it ended meanwhile): give the agent back."""
        with suppress(LookupError, RuntimeError):
            self.deliver(await self.engine.ring_no_answer(offer.call_id, offer.agent_id))

    # --- after a (re)connect ------------------------------------------------------------------------

    async def resync(self, live: set[str]) -> None:
        """Calls the engine holds whose channel Asterisk no longer has (``live``: the channel
        ids ARI lists; they hung up while we were away) leave the queues, so no agent is rung
        for a caller who is gone."""
        gone = 0
        for call_id in await self.engine.live_calls():
            if await self.engine.redis.exists(self._callback_key(call_id)):
                continue  # the caller hung up on purpose and waits for our call
            state = await self.engine.call(call_id)
            if state is not None and state["channel_id"] not in live:
                await self.engine.remove(call_id, "abandoned")
                gone += 1
        if gone:
            log.info("resync: %d queued call(s) had hung up while we were away", gone)
        await self._sweep_orphans(live)
        await self._sweep_leftovers()
        # In the background: a resync must not wait for a bridge for each of a thousand agents.
        if self._preparing is None or self._preparing.done():
            self._preparing = self._bridge_work.spawn(
                self.prepare_bridges(await self.engine.logged_in()), name="queue-agents-bridges")

    async def _sweep_orphans(self, live: set[str]) -> None:
        """Agents' legs and conversation bridges whose caller is gone: an agent must not be
        left alone on a line nobody will ever hang up. A conversation bridge is named after the
        caller it was made for; kept for its agent, it may hold another caller since: it goes
        when neither is here and this process does not use it (a process before it kept it)."""
        for channel_id in live:
            caller, mark, _ = channel_id.partition(AGENT_MARK)
            if mark and caller not in live:
                log.info("resync: hanging up an agent's leg whose caller is gone")
                await self.hangup_quietly(channel_id)
        bridges = await self.ari.list_bridges()
        for bridge_id in self.bridges.missing(b.id for b in bridges):
            log.info("resync: agents' bridge %s is gone from Asterisk; the agent gets a new one", bridge_id)
        for bridge in bridges:
            bridge_caller = call_bridge_caller(bridge.id)
            if bridge_caller is None or bridge_caller in live or self.bridges.owns(bridge.id):
                continue
            if any(ch in live and AGENT_MARK not in ch for ch in bridge.channels):
                continue  # a call restored after a restart talks in it: it goes at that call's end
            log.info("resync: destroying bridge %s, whose caller is gone", bridge.id)
            await self.destroy_bridge_quietly(bridge.id)

    async def tidy_kept_bridges(self) -> None:
        """The bridges kept for agents who have logged out since (by any process) go."""
        if not self.bridges.kept:
            return
        for bridge_id in self.bridges.idle(but=set(await self.engine.logged_in())):
            await self.destroy_bridge_quietly(bridge_id)

    # Legs and bridges that a failed clean-up left behind (ids in Redis, so that any process,
    # also after a restart, removes them): retried at every resync and now and then meanwhile.

    def _leftovers_key(self) -> str:
        return f"{self.engine.prefix}:leftovers"

    async def _leave_for_sweep(self, kind: str, ident: str) -> None:
        try:
            await self.engine.redis.sadd(self._leftovers_key(), f"{kind}:{ident}")
        except Exception as exc:  # noqa: BLE001 - the id is in the log; the caller-gone sweep still applies
            log.error("%s %s could not be noted for the sweep: %s", kind, ident, exc or type(exc).__name__)

    async def _sweep_leftovers(self) -> None:
        for raw in await self.engine.redis.smembers(self._leftovers_key()):
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            kind, _, ident = member.partition(":")
            try:
                if kind == "channel":
                    await self.ari.hangup(ident)
                else:
                    await self.ari.destroy_bridge(ident)
            except AriNotFound:
                pass  # gone meanwhile
            except AriError as exc:
                log.warning("sweep: %s %s still could not be removed: %s", kind, ident, exc)
                continue
            else:
                log.info("sweep: removed %s %s that a failed clean-up had left", kind, ident)
            await self.engine.redis.srem(self._leftovers_key(), member)

    # --- wrap-ups and life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(self.engine, AnnouncingEngine):
            self._tasks.append(loop.create_task(self.engine.events.run(), name="agent-events"))
        self._tasks += [
            loop.create_task(self._run_wrap_ups(), name="queue-wrap-ups"),
            # Live figures for the supervisors' wallboards, on <prefix>:figures while one is open.
            loop.create_task(FiguresPublisher(
                self.engine.redis, self.engine.prefix, level_of=lambda code: self.tree.get(code).level.name.lower(),
                only_when_watched=True,
            ).run(self.engine.changed), name="queue-figures"),
        ]

    async def _run_wrap_ups(self) -> None:
        # Any process may end any wrap-up, requeue any due callback retry and remove what a
        # failed clean-up left (all in Redis), so what another process started before it died
        # still happens. Leftovers are rare and wait for Asterisk to recover: now and then.
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + LEFTOVER_SWEEP_EVERY_S
        while True:
            try:
                wait = await self._end_what_is_due()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + LEFTOVER_SWEEP_EVERY_S
                    await self._sweep_leftovers()
                    await self.tidy_kept_bridges()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ending wrap-ups failed; trying again")
                wait = 1.0
            await self._sleep_until_due(wait)

    async def _sleep_until_due(self, wait: float) -> None:
        """Sleep ``wait`` seconds, or less when this process makes something due sooner. A
        look with nothing known to be due before it (the longest wait) falls on the process's
        common beat (core.beat); one for a wrap-up known to be due is at that moment."""
        engine, loop = self.engine, asyncio.get_running_loop()
        deadline = loop.time() + (to_the_beat(DUE_LOOK_MAX_S, loop) if wait >= DUE_LOOK_MAX_S else wait)
        while (left := deadline - loop.time()) > 0:
            try:
                async with asyncio.timeout(left):
                    await engine.scheduled.wait()
            except TimeoutError:
                return
            engine.scheduled.clear()
            due, engine.scheduled_ms = engine.scheduled_ms, None
            if due is not None:
                deadline = min(deadline, loop.time() + max(0.0, (due - engine.clock_ms()) / 1000) + DUE_MARGIN_S)

    async def _end_what_is_due(self) -> float:
        """End the wrap-ups and requeue the callback retries that are due, after one read of
        both (one round trip when none is); the seconds until the next look: when the first
        wrap-up or retry not yet due is, at most DUE_LOOK_MAX_S."""
        now = self.engine.clock_ms()
        # The wrap-ups this process started and knows due are ended in the moment of the look:
        # every script submitted in one turn of the loop goes in one pipeline, so their replies
        # come back with the look's (one wake-up, not two, issue 15).
        mine = self.engine.wrap_ups_due(now)
        ending = [asyncio.ensure_future(end) for end in self._ends(mine, only_due=True)]
        look = asyncio.ensure_future(self.engine.wrap_ups_ahead(DUE_LOOK_WRAP_UPS, first_of=self._retry_key()))
        try:
            await self._after_ends(list(await asyncio.gather(*ending, return_exceptions=True)))
        finally:
            wrap_ups, retry = await look
        due = [agent_id for agent_id, ends in wrap_ups if ends <= now]
        await self._end_wrap_ups([agent_id for agent_id in due if agent_id not in mine])
        if retry is not None and retry <= now:
            await self._requeue_due_callbacks()
            return DUE_AGAIN_S  # the retries read were the due ones: when the next is, is not known
        if len(due) == DUE_LOOK_WRAP_UPS:
            return DUE_AGAIN_S  # more may be due behind those read
        # An entry that stays due (another process ended it meanwhile, or it could not be)
        # is seen again at the next look, not sooner: the wait is for the first one not due.
        later = [ends for _, ends in wrap_ups if ends > now][:1] + ([] if retry is None else [retry])
        return min([DUE_LOOK_MAX_S, *((ends - now) / 1000 + DUE_MARGIN_S for ends in later)])

    async def _end_wrap_ups(self, agent_ids: list[str]) -> None:
        """Each agent available (their scripts in one pipeline) and offered a call if one
        waits; one that fails does not keep the others in wrap-up: the first failure is raised
        after all were tried (the loop logs it and looks again)."""
        await self._after_ends(await asyncio.gather(*self._ends(agent_ids), return_exceptions=True))

    def _ends(self, agent_ids: list[str], *, only_due: bool = False) -> list[Awaitable[Offer | None]]:
        """``only_due``: only if their wrap-up is due by Redis's own record (an agent who chose a
        break meanwhile stays on it; one that did not end is still in Redis, seen at a look)."""
        return [self._end_due(a) if only_due else self.engine.set_available(a) for a in agent_ids]

    async def _after_ends(self, ended: list[Offer | None | BaseException]) -> None:
        """Offers delivered and the agents' news sent; the first failure raised."""
        if not ended:
            return
        if isinstance(self.engine, AnnouncingEngine):
            await self.engine.events.send_now()  # "available": nothing of this loop's follows to ride with
        for result in ended:
            if not isinstance(result, BaseException):
                self.deliver(result)
        failed = [result for result in ended if isinstance(result, BaseException)]
        if failed:  # a cancellation (the loop is closing) first: it is not a failure to log
            raise next((f for f in failed if not isinstance(f, Exception)), failed[0])

    async def _end_due(self, agent_id: str) -> Offer | None:
        return (await self.engine.end_wrap_up(agent_id))[1]

    async def close(self) -> None:
        await cancel_and_wait(self._tasks, what="the queues")
        await self._bridge_work.close()
        # The agents' idle bridges go with the process that kept them (a call in one goes on:
        # the next process destroys its bridge at its end). Side by side: the stop is bounded.
        await asyncio.gather(*(self.destroy_bridge_quietly(b) for b in self.bridges.idle()))
