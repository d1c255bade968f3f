"""The call's states between the menu and the end: waiting in a queue, ringing an agent, talking.

They continue the IVR's states (:mod:`ivr.flow`) under the call core's rules
(:mod:`calls.flow`): same inputs, same rule that a transition returns the next state. Each
state gets the queue service by its constructor, as :class:`CallQueues`. Everything that must
survive a restart is on the call state in Redis (jurisdiction, agent, agent leg, bridge) or
in the queue engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ari.errors import AriError, AriNotFound, AriUnavailable
from calls.call import Call
from calls.flow import BaseState, Ended, State
from calls.registry import StateRegistry
from calls.speech import SpeechEvent
from core.settings import QueueSettings
from ivr.flow import Waiting
from queues.engine import Offer
from queues.resolve import JurisdictionResolver

log = logging.getLogger(__name__)

ANNOUNCE_TIMER = "announce"
OVERFLOW_TIMER = "overflow"


class CallQueues(Protocol):
    """The queue service as the queue states use it (:class:`queues.services.QueueService`)."""

    app: str
    settings: QueueSettings
    resolver: JurisdictionResolver

    async def enqueue(self, call: Call, code: str, source: str) -> State: ...
    async def overflow_delay(self, call: Call) -> float | None: ...
    async def overflow_next(self, call: Call) -> Offer | None: ...
    async def announce(self, call: Call) -> None: ...
    async def keep_place(self, call: Call) -> None: ...
    async def leave(self, call: Call) -> None: ...
    def callback_possible(self, call: Call) -> bool: ...
    async def book_callback(self, call: Call) -> None: ...
    def callback_endpoint(self, call: Call) -> str: ...
    async def callback_failed(self, call: Call) -> None: ...
    def agent_leg_id(self, call: Call) -> str: ...
    def alias(self, call: Call, key: str) -> None: ...
    async def connect(self, call: Call, *, as_state: str) -> bool: ...
    async def ring_no_answer(self, call: Call, agent_id: str) -> Offer | None: ...
    async def give_back(self, call: Call, agent_id: str) -> Offer | None: ...
    async def hung_up(self, call: Call, agent_id: str) -> None: ...
    async def release_stray(self, call: Call, channel_id: str) -> None: ...
    async def agent_held(self, call: Call, held: bool) -> None: ...
    async def hang_up_leg(self, call: Call, channel_id: str) -> bool: ...
    async def end_conversation(self, call: Call) -> None: ...


class Farewell(BaseState):
    """Say the last prompts, then close the caller's line."""

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        if playback_id == call.playback_id:
            await call.hang_up()
        return self


@dataclass
class AfterHours(Farewell):
    """Outside opening hours: the caller is told when to call, then the line is closed."""

    name: ClassVar[str] = "after_hours"
    outcome_on_hangup: ClassVar[str] = "after_hours"

    async def enter(self, call: Call) -> State:
        call.data.outcome = "after_hours"
        await call.close_listener()
        await call.play("after_hours", "goodbye")
        return self


CITY_TIMER = "city"
#: Tries at saying or keying a city before the call is queued at the default jurisdiction.
CITY_ATTEMPTS = 2


@dataclass
class AskCity(BaseState):
    """Nothing says where the caller is: they say their city, or key its area code and #."""

    name: ClassVar[str] = "ask_city"
    queues: CallQueues
    attempt: int = 1
    keyed: str = ""
    reason: str = ""

    async def enter(self, call: Call) -> State:
        if self.attempt > CITY_ATTEMPTS:
            return await self._queue(call, None, "default")
        await call.listen("city")
        await call.play(*([self.reason] if self.reason else []), "ask_city")
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        call.question_asked(playback_id, CITY_TIMER)
        return self

    async def on_timer(self, call: Call, name: str, token: int) -> State:
        if name != CITY_TIMER or token != call.timer_token or call.speaking:
            return self
        call.stop_listening()
        if self.keyed:  # keyed digits but no #: take them as they are
            return await self._keyed_done(call)
        return AskCity(self.queues, attempt=self.attempt + 1, reason="no_input")

    async def on_dtmf(self, call: Call, digit: str) -> State:
        call.stop_listening()
        await call.stop_prompt()
        if digit == "#":
            return await self._keyed_done(call)
        if digit.isdigit():
            self.keyed += digit
            call.start_timer(CITY_TIMER, call.svc.no_input_timeout_s)
        return self

    async def _keyed_done(self, call: Call) -> State:
        code = self.queues.resolver.spoken_city_code(self.keyed) if self.keyed else None
        call.data.menu_path.append(f"ask_city:keyed:{'found' if code else 'no_match'}")
        if code is None:
            return AskCity(self.queues, attempt=self.attempt + 1, reason="no_match")
        return await self._queue(call, code, "keyed_area_code")

    async def on_speech(self, call: Call, event: SpeechEvent) -> State:
        heard = await call.answer_heard(event, CITY_TIMER)
        if heard is None:
            return self
        event = heard
        # A pack's city phrase must name a jurisdiction we know; anything else is no match.
        code = self.queues.resolver.spoken_city_code(event.choice) if event.choice else None
        call.data.menu_path.append(f"ask_city:speech:{code or event.reason}")
        if code is None:
            return AskCity(self.queues, attempt=self.attempt + 1,
                           reason="no_input" if event.reason == "timeout" else "no_match")
        return await self._queue(call, code, "spoken_city")

    async def _queue(self, call: Call, code: str | None, source: str) -> State:
        await call.close_listener()
        call.cancel_timer(CITY_TIMER)
        svc = self.queues
        return await svc.enqueue(call, code or svc.resolver.default_code, source)


@dataclass
class InQueue(Waiting):
    """Waiting for an agent: music, position and wait announcements, climbing the levels."""

    name: ClassVar[str] = "in_queue"
    queues: CallQueues
    #: Tell the caller they are queued (not again after an agent did not answer).
    notice: bool = True

    async def enter(self, call: Call) -> State:
        if self.notice:
            nxt = await super().enter(call)
            if nxt is not self:
                return nxt
        else:
            await self._hold(call)
        await self._arm(call)
        return self

    async def resume(self, call: Call) -> State:
        await self._hold(call)
        await self._arm(call)
        return self

    async def _arm(self, call: Call) -> None:
        svc = self.queues
        call.svc.timers.start(call.key, ANNOUNCE_TIMER, svc.settings.announce_every_s)
        delay = await svc.overflow_delay(call)
        if delay is not None:
            call.svc.timers.start(call.key, OVERFLOW_TIMER, delay)

    async def on_timer(self, call: Call, name: str, token: int) -> State:
        svc = self.queues
        if name == ANNOUNCE_TIMER:
            await svc.announce(call)
            call.svc.timers.start(call.key, ANNOUNCE_TIMER, svc.settings.announce_every_s)
        elif name == OVERFLOW_TIMER:
            offer = await svc.overflow_next(call)
            if offer is not None:
                return Connecting.to(self.queues, call, offer)
            delay = await svc.overflow_delay(call)
            if delay is not None:
                call.svc.timers.start(call.key, OVERFLOW_TIMER, delay)
        return self

    async def on_offer(self, call: Call, offer: Offer) -> State:
        """An agent was assigned to this call (only a waiting call takes an offer)."""
        return Connecting.to(self.queues, call, offer)

    async def on_helper_entered(self, call: Call, channel_id: str) -> State:
        await self.queues.release_stray(call, channel_id)
        return self

    async def on_dtmf(self, call: Call, digit: str) -> State:
        if digit == "1" and self.queues.callback_possible(call):
            call.data.menu_path.append("in_queue:callback")
            return CallbackBooked(self.queues)
        return self

    async def on_caller_gone(self, call: Call) -> None:
        svc = self.queues
        await svc.keep_place(call)
        await svc.leave(call)


@dataclass
class CallbackBooked(Farewell):
    """The caller will be called back: their place stays in the queue, their line is closed."""

    name: ClassVar[str] = "callback_booked"
    outcome_on_hangup: ClassVar[str] = "callback_booked"
    queues: CallQueues

    async def enter(self, call: Call) -> State:
        await self.queues.book_callback(call)
        await call.stop_music()
        await call.play("callback_booked")
        return self


@dataclass
class CallingBack(BaseState):
    """An agent is free for a caller who asked to be called back: their phone rings first."""

    name: ClassVar[str] = "calling_back"
    outcome_on_hangup: ClassVar[str] = "callback_unanswered"
    queues: CallQueues
    agent_id: str = ""
    endpoint: str = ""

    async def enter(self, call: Call) -> State:
        svc = self.queues
        try:
            await call.svc.ari.originate(
                svc.callback_endpoint(call), app=svc.app, app_args=["callback", call.data.call_id],
                caller_id=call.data.hotline_number, timeout_s=svc.settings.ring_timeout_s * 2, channel_id=call.key,
            )
        except AriError as exc:
            log.warning("call %s: calling the caller back failed: %s", call.data.call_id, exc)
            await svc.callback_failed(call)
            return Ended()
        return self

    async def on_helper_entered(self, call: Call, channel_id: str) -> State:
        if channel_id != call.key:
            return self
        # The caller picked up: now their agent's phone rings, as for any call.
        return Connecting.ring(self.queues, call, self.agent_id, self.endpoint)

    async def on_caller_gone(self, call: Call) -> None:
        await self.queues.callback_failed(call)


@dataclass
class Connecting(BaseState):
    """An agent's phone rings; the caller keeps their music."""

    name: ClassVar[str] = "connecting"
    outcome_on_hangup: ClassVar[str] = "abandoned_in_queue"
    queues: CallQueues
    agent_id: str = ""
    endpoint: str = ""

    @classmethod
    def to(cls, queues: CallQueues, call: Call, offer: Offer) -> Connecting:
        return cls.ring(queues, call, offer.agent_id, offer.endpoint)

    @classmethod
    def ring(cls, queues: CallQueues, call: Call, agent_id: str, endpoint: str) -> Connecting:
        """Ring the agent. The agent and the leg's id go on the call first, so that they are
        stored before the phone rings (a restart then knows whom it was ringing)."""
        call.data.agent_id = agent_id
        call.data.agent_channel = queues.agent_leg_id(call)
        return cls(queues, agent_id=agent_id, endpoint=endpoint)

    async def enter(self, call: Call) -> State:
        svc = self.queues
        svc.alias(call, call.data.agent_channel or "")
        # The caller hears why the line is quiet while the agent's phone rings. What they were
        # hearing ("you are queued", their position) stops first: Asterisk would play this after
        # it, and adds a channel to a bridge only once its prompts are over, so a prompt left
        # playing keeps the agent who answered in silence, or fails the connect.
        await call.stop_prompt()
        await call.play(*call.announce, "connecting_agent")
        call.announce = []
        try:
            await call.svc.ari.originate(
                self.endpoint, app=svc.app, app_args=["agent", call.data.call_id],
                caller_id=call.data.caller_phone or call.data.hotline_number,
                timeout_s=svc.settings.ring_timeout_s, channel_id=call.data.agent_channel,
            )
        except AriUnavailable as exc:
            if exc.status != 0:
                # Asterisk answered 5xx: e.g. "Allocation failed", a phone with no registered
                # contact. That phone cannot ring: the agent goes on break as for no answer.
                log.warning("call %s: calling agent %s at %s failed: %s", call.data.call_id, self.agent_id,
                            self.endpoint, exc)
                return await self._not_answered(call)
            # No answer from Asterisk at all (a timeout): nothing the agent did. Asterisk may
            # still make the leg: hang it up (now, or when it enters Stasis: release_stray).
            log.warning("call %s: calling agent %s at %s got no answer from Asterisk: %s", call.data.call_id,
                        self.agent_id, self.endpoint, exc)
            await svc.hang_up_leg(call, call.data.agent_channel or "")
            return await self._give_back(call)
        except AriError as exc:
            log.warning("call %s: calling agent %s at %s failed: %s", call.data.call_id, self.agent_id,
                        self.endpoint, exc)
            return await self._not_answered(call)
        return self

    async def resume(self, call: Call) -> State:
        # After a restart we cannot know how far the ringing got (the agent may have answered):
        # start the offer over, without blaming the agent for our restart.
        svc = self.queues
        if call.data.agent_channel:
            await svc.hang_up_leg(call, call.data.agent_channel)
        return await self._give_back(call)

    async def on_helper_entered(self, call: Call, channel_id: str) -> State:
        if channel_id != call.data.agent_channel:
            await self.queues.release_stray(call, channel_id)
            return self
        if not await self.queues.connect(call, as_state=Connected.name):
            # The agent's phone answered: whatever failed, it was not the agent.
            return await self._give_back(call)
        return Connected(self.queues)

    async def on_helper_gone(self, call: Call, channel_id: str, cause: int) -> State:
        if channel_id != call.data.agent_channel:
            return self
        return await self._not_answered(call)

    async def on_resync(self, call: Call) -> State:
        # While the events were lost the agent's phone may have answered (its leg then waits in
        # Stasis, the agent hearing nothing) or the leg may have ended: look at it now.
        leg = call.data.agent_channel
        if not leg:
            return await super().on_resync(call)
        try:
            channel = await call.svc.ari.get_channel(leg)
        except AriNotFound:
            # Unanswered or dropped, we cannot tell which: not blamed on the agent.
            log.info("call %s: agent %s's leg ended while events were lost", call.data.call_id, self.agent_id)
            return await self._give_back(call)
        except AriError as exc:
            log.warning("call %s: agent leg %s unknown after the reconnect: %s", call.data.call_id, leg, exc)
            return await super().on_resync(call)
        if channel.state == "Up" and channel.in_stasis_app(self.queues.app):
            log.info("call %s: agent %s answered while events were lost", call.data.call_id, self.agent_id)
            return await self.on_helper_entered(call, leg)
        return await super().on_resync(call)

    async def _not_answered(self, call: Call) -> State:
        svc = self.queues
        agent_id = self.agent_id or call.data.agent_id or ""  # restored states carry it on the call
        offer = await svc.ring_no_answer(call, agent_id)
        log.info("call %s: agent %s did not answer", call.data.call_id, agent_id)
        return self._next(call, offer)

    async def _give_back(self, call: Call) -> State:
        """The attempt failed through no fault of the agent: they are given back (not on break)
        and the caller, back at the head of the queue, gets the next offer."""
        agent_id = self.agent_id or call.data.agent_id or ""  # restored states carry it on the call
        return self._next(call, await self.queues.give_back(call, agent_id))

    def _next(self, call: Call, offer: Offer | None) -> State:
        call.data.agent_id = call.data.agent_channel = None
        # Back in the queue the caller hears music again (not the "you are queued" notice).
        return Connecting.to(self.queues, call, offer) if offer is not None else InQueue(self.queues, notice=False)

    async def on_caller_gone(self, call: Call) -> None:
        svc = self.queues
        if call.data.agent_channel:
            await svc.hang_up_leg(call, call.data.agent_channel)
        await svc.leave(call)


@dataclass
class Connected(BaseState):
    """Caller and agent talk in the agent's bridge."""

    name: ClassVar[str] = "connected"
    outcome_on_hangup: ClassVar[str] = "answered"
    queues: CallQueues

    async def resume(self, call: Call) -> State:
        svc = self.queues
        for helper in (call.data.agent_channel, call.data.call_bridge and f"bridge:{call.data.call_bridge}"):
            if helper:
                svc.alias(call, helper)
        return self

    async def on_helper_entered(self, call: Call, channel_id: str) -> State:
        await self.queues.release_stray(call, channel_id)
        return self

    async def on_hold(self, call: Call, channel_id: str, held: bool, music_class: str | None) -> State:
        # Only the agent's phone: a hold on the caller's own channel is the desktop's hold
        # button (Asterisk's hold indication, which plays the caller music itself) or the
        # caller's phone.
        if channel_id == call.data.agent_channel:
            await self.queues.agent_held(call, held)
        return self

    async def on_resync(self, call: Call) -> State:
        # The agent may have hung up while the events were lost: the caller must not stay on alone.
        leg = call.data.agent_channel
        if leg:
            try:
                await call.svc.ari.get_channel(leg)
            except AriNotFound:
                return await self.on_helper_gone(call, leg, 0)
            except AriError as exc:
                log.warning("call %s: agent leg %s unknown after the reconnect: %s", call.data.call_id, leg, exc)
        return await super().on_resync(call)

    async def on_helper_gone(self, call: Call, channel_id: str, cause: int) -> State:
        if channel_id != call.data.agent_channel:
            return self
        # The agent hung up: the conversation is over for the caller too.
        call.data.outcome = "answered"
        await call.hang_up()
        return self

    async def on_caller_gone(self, call: Call) -> None:
        await self.queues.end_conversation(call)


def register_states(registry: StateRegistry, queues: CallQueues) -> None:
    """The queues' states, so that a restarted process can restore them."""
    registry.register(AfterHours.name, lambda data: AfterHours())
    registry.register(AskCity.name, lambda data: AskCity(queues))
    registry.register(InQueue.name, lambda data: InQueue(queues))
    registry.register(CallbackBooked.name, lambda data: CallbackBooked(queues))
    registry.register(CallingBack.name, lambda data: CallingBack(queues))
    # The agent being rung is on the stored call (``agent_id``), which the state falls back to.
    registry.register(Connecting.name, lambda data: Connecting(queues))
    registry.register(Connected.name, lambda data: Connected(queues))
