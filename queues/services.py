"""Queue logic for calls: route a call to its jurisdiction's queue, climb the levels, offer
agents, connect them, announce positions, run wrap-ups.

:class:`QueueService` is the IVR's :class:`~ivr.services.Router`. Offers that arise outside a
call's own events (an agent becoming free) reach the call as a :class:`QueueOffered` event in
the call's FIFO, so a call never handles two inputs at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime, timezone
import logging
from contextlib import suppress
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio import Redis

from hotline.ari.dispatcher import Dispatcher
from hotline.ari.errors import AriError
from hotline.ari.models import Event
from hotline.ari.rest import AriRest
from hotline.settings import QueueSettings
from ivr.flow import BaseState, Call
from ivr.store import utcnow
from queues.engine import Agent, Offer, QueueEngine, WaitingCall
from queues.figures import FiguresPublisher
from ivr.store import CallState
from queues.flow import AfterHours, AskCity, CallingBack, Connecting, InQueue
from queues.hours import is_open
from queues.jurisdictions import JurisdictionTree
from queues.resolve import JurisdictionResolver
from hotline.tasks import cancel_and_wait

if TYPE_CHECKING:
    from ivr.services import IvrService

log = logging.getLogger(__name__)

#: Marker of the agent legs' channel ids (``<caller channel>-agent-<n>``) and the suffix of a
#: conversation's bridge (``<caller channel>-call``): a restarted process finds orphans by them.
AGENT_MARK = "-agent-"
CALL_BRIDGE_SUFFIX = "-call"


# --- what happens to agents, for their desktops and the wallboard --------------------------------


class AgentEvents:
    """Publishes the agent events of the desktop contract on ``<prefix>:events:agents``:
    ``{"type": "agent.state", "agent_id", "state", "reason", "call_id"}`` and
    ``{"type": "call.offered" | "call.connected" | "call.ended", "agent_id", "call_id", "channel_id"}``.

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

    def agent_state(self, agent_id: str, state: str, *, reason: str | None = None, call_id: str | None = None) -> None:
        self.emit({"type": "agent.state", "agent_id": agent_id, "state": state, "reason": reason or None,
                   "call_id": call_id or None})

    def call(self, kind: str, agent_id: str, call_id: str, channel_id: str | None) -> None:
        self.emit({"type": f"call.{kind}", "agent_id": agent_id, "call_id": call_id, "channel_id": channel_id})

    def emit(self, message: dict[str, Any]) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("agent events: %d dropped, Redis does not keep up", self.dropped)
            return
        self._pending.append(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
        self._wake.set()

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


class AnnouncingEngine(QueueEngine):
    """The queue engine that also tells :class:`AgentEvents` what happened to agents.

    Every change of an agent's state goes through the engine, whoever asks for it (the call
    flows, the wrap-up loop, the desktop), so this is the one place that sees them all. An
    event is emitted only after the engine's script succeeded, with what its answer says
    (an offer rings an agent). Where the answer does not name the call's agent or channel
    (hung up, removed), the call is read just before: one pipelined read, on calls only.
    """

    def __init__(self, redis: Redis, prefix: str, *, events: AgentEvents, **options: Any) -> None:
        super().__init__(redis, prefix, **options)
        self.events = events

    def _offered(self, offer: Offer | None) -> Offer | None:
        if offer is not None:
            self.events.agent_state(offer.agent_id, "ringing", call_id=offer.call_id)
            self.events.call("offered", offer.agent_id, offer.call_id, offer.channel_id)
        return offer

    async def enqueue(self, call: WaitingCall) -> Offer | None:
        return self._offered(await super().enqueue(call))

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

    async def set_break(self, agent_id: str, reason: str) -> None:
        await super().set_break(agent_id, reason)
        self.events.agent_state(agent_id, "break", reason=reason)

    async def answered(self, call_id: str, agent_id: str) -> None:
        before = await self.call(call_id)
        await super().answered(call_id, agent_id)
        self.events.agent_state(agent_id, "on_call", call_id=call_id)
        self.events.call("connected", agent_id, call_id, before["channel_id"] if before else None)

    async def ring_no_answer(self, call_id: str, agent_id: str) -> Offer | None:
        before = await self.call(call_id)
        offer = await super().ring_no_answer(call_id, agent_id)
        self.events.call("ended", agent_id, call_id, before["channel_id"] if before else None)
        self.events.agent_state(agent_id, "break", reason="no_answer")
        return self._offered(offer)

    async def hung_up(self, call_id: str, agent_id: str) -> None:
        before = await self.call(call_id)
        await super().hung_up(call_id, agent_id)
        self.events.call("ended", agent_id, call_id, before["channel_id"] if before else None)
        self.events.agent_state(agent_id, "wrap_up", call_id=call_id)

    async def remove(self, call_id: str, reason: str) -> bool:
        before = await self.call(call_id)
        removed = await super().remove(call_id, reason)
        agent_id = before["agent_id"] if before else None
        if removed and agent_id:  # the caller left while an agent's phone rang or they talked
            self.events.call("ended", agent_id, call_id, before["channel_id"] if before else None)
            self.events.agent_state(agent_id, "wrap_up", call_id=call_id)
        return removed


@dataclass(frozen=True, slots=True)
class QueueOffered(Event):
    """An agent was assigned to a waiting call (posted locally, never sent by Asterisk)."""

    key: str
    offer: Offer

    def route_key(self) -> str | None:
        return self.key


class CallRecorder(Protocol):
    """Records conversations (``recordings.capture``): a segment per bridging of caller and agent."""

    async def start(self, data: CallState, bridge_id: str) -> None: ...
    async def stop(self, call_id: str) -> None: ...


class QueueService:
    def __init__(self, engine: QueueEngine, tree: JurisdictionTree, resolver: JurisdictionResolver, ari: AriRest,
                 dispatcher: Dispatcher, app: str, settings: QueueSettings,
                 recorder: CallRecorder | None = None) -> None:
        self.engine, self.tree, self.resolver = engine, tree, resolver
        self.ari, self.dispatcher, self.app, self.settings = ari, dispatcher, app, settings
        self.recorder = recorder
        self._serial = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    # --- the router -------------------------------------------------------------------------

    async def route(self, call: Call) -> BaseState:
        """The IVR has decided: queue the call where it belongs, or hand it to an agent now.

        When neither the dialled line nor the caller's number says where the caller is, they
        are asked for their city first (once).
        """
        data = call.data
        if not self.open_now():
            return AfterHours()
        where = self.resolver.resolve(area_code=data.area_code, caller_number=data.caller_phone)
        if where.source == "default" and data.jurisdiction is None:
            return AskCity()
        return await self.enqueue(call, data.jurisdiction or where.code, data.jurisdiction_source or where.source)

    def open_now(self) -> bool:
        h = self.settings.hours
        return is_open(datetime.now(timezone.utc), timezone=h.timezone, days=h.days, opens=h.opens, closes=h.closes)

    async def enqueue(self, call: Call, code: str, source: str) -> BaseState:
        data = call.data
        data.jurisdiction, data.jurisdiction_source = code, source
        place = await self._place_kept(call)
        offer = await self.engine.enqueue(WaitingCall(
            call_id=data.call_id, channel_id=data.channel_id, jurisdiction=code, line=data.business_line,
            # Agents speak locales (zh-CN); the call carries Asterisk's spelling (zh_CN).
            language=data.language.replace("_", "-"), enqueued_at_ms=place,
        ))
        offer = offer or await self._skip_unstaffed(call)
        log.info("call %s queued for %s (%s) on %s", data.call_id, code, source, data.business_line)
        return Connecting.to(call, offer) if offer is not None else InQueue()

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

    async def call_back(self, offer: Offer, ivr: "IvrService") -> bool:
        """An agent was offered a call whose caller waits for our call: ring the caller."""
        raw = await self.engine.redis.hget(self._callback_key(offer.call_id), "state")
        if raw is None:
            return False
        state = CallState.from_json(raw)
        attempt = await self.engine.redis.hincrby(self._callback_key(offer.call_id), "attempts", 1)
        state.channel_id = f"{offer.channel_id}-cb-{attempt}"
        state.state, state.ended_at, state.outcome, state.hangup_cause = "calling_back", None, None, None
        await ivr.adopt(state, CallingBack(agent_id=offer.agent_id, endpoint=offer.endpoint))
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

    def _retry_key(self) -> str:
        return f"{self.engine.prefix}:callback-retries"

    async def _requeue_due_callbacks(self) -> None:
        for raw in await self.engine.redis.zrangebyscore(self._retry_key(), "-inf", self.engine.clock_ms()):
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

    async def _place_kept(self, call: Call) -> int | None:
        key = self._place_key(call)
        if key is None:
            return None
        kept = await self.engine.redis.getdel(key)
        if kept is None:
            return None
        log.info("call %s: the caller called back and gets their earlier place", call.data.call_id)
        return int(kept)

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
        return f"{call.key}{AGENT_MARK}{next(self._serial)}"

    def alias(self, call: Call, key: str) -> None:
        """Events of a channel (or ``bridge:<id>``) we make for the call go to the call's FIFO."""
        self.dispatcher.alias(key, call.key)

    async def connect(self, call: Call) -> bool:
        """The agent answered: caller and agent into a bridge of their own; False if that failed."""
        data = call.data
        bridge_id = data.call_bridge = f"{call.key}{CALL_BRIDGE_SUFFIX}"
        self.alias(call, f"bridge:{bridge_id}")
        try:
            await self.ari.create_bridge(bridge_id=bridge_id, name=f"call {data.call_id}")
            await call.stop_prompt()
            await call.stop_music()
            await self.ari.add_channel(bridge_id, call.key)
            await self.ari.add_channel(bridge_id, data.agent_channel or "")
        except AriError as exc:
            log.warning("call %s: connecting agent %s failed: %s", data.call_id, data.agent_id, exc)
            await self.destroy_bridge_quietly(bridge_id)
            data.call_bridge = None
            return False
        data.answered_at = data.answered_at or utcnow()
        await self.engine.answered(data.call_id, data.agent_id or "")
        log.info("call %s connected to agent %s", data.call_id, data.agent_id)
        # From answer to hang-up; after a transfer, the next agent's part is a new segment.
        await self._record(call, bridge_id)
        return True

    async def _record(self, call: Call, bridge_id: str) -> None:
        if self.recorder is None:
            return
        try:
            await self.recorder.start(call.data, bridge_id)
        except Exception:  # noqa: BLE001 - a recording problem must never drop the caller
            log.exception("call %s: starting the recording failed", call.data.call_id)

    async def stop_recording(self, call: Call) -> None:
        if self.recorder is None or not call.data.call_bridge:
            return
        try:
            await self.recorder.stop(call.data.call_id)
        except Exception:  # noqa: BLE001 - the bridge's end stops it in Asterisk anyway
            log.exception("call %s: stopping the recording failed", call.data.call_id)

    async def hangup_quietly(self, channel_id: str) -> None:
        with suppress(AriError):
            await self.ari.hangup(channel_id)

    async def destroy_bridge_quietly(self, bridge_id: str) -> None:
        with suppress(AriError):
            await self.ari.destroy_bridge(bridge_id)

    # --- agents -------------------------------------------------------------------------------------

    async def login(self, agent: Agent) -> None:
        await self.engine.login(agent)

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

    async def _sweep_orphans(self, live: set[str]) -> None:
        """Agents' legs and conversation bridges whose caller is gone: an agent must not be
        left alone on a line nobody will ever hang up."""
        for channel_id in live:
            caller, mark, _ = channel_id.partition(AGENT_MARK)
            if mark and caller not in live:
                log.info("resync: hanging up an agent's leg whose caller is gone")
                await self.hangup_quietly(channel_id)
        for bridge in await self.ari.list_bridges():
            caller = bridge.id.removesuffix(CALL_BRIDGE_SUFFIX)
            if caller != bridge.id and caller not in live:
                await self.destroy_bridge_quietly(bridge.id)

    # --- wrap-ups and life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(self.engine, AnnouncingEngine):
            self._tasks.append(loop.create_task(self.engine.events.run(), name="agent-events"))
        self._tasks += [
            loop.create_task(self._run_wrap_ups(), name="queue-wrap-ups"),
            # Live figures for the supervisors' wallboard, on <prefix>:figures.
            loop.create_task(FiguresPublisher(
                self.engine.redis, self.engine.prefix, level_of=lambda code: self.tree.get(code).level.name.lower(),
            ).run(self.engine.changed), name="queue-figures"),
        ]

    async def _run_wrap_ups(self) -> None:
        # Any process may end any wrap-up and requeue any due callback retry (both are in
        # Redis), so what another process started before it died still happens.
        while True:
            await asyncio.sleep(0.2)
            try:
                for agent_id in await self.engine.wrap_up_due():
                    self.deliver(await self.engine.set_available(agent_id))
                await self._requeue_due_callbacks()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ending wrap-ups failed; trying again")
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks, what="the queues")
