"""A call's journey through the IVR as explicit state classes.

Each state reacts to one kind of input (a digit, speech, the end of a prompt, a timer) and
returns the next state; returning ``self`` means "stay". :class:`CallFlow` runs the
transitions, persists the call state after each one and calls ``enter`` on every new
state, which may itself move on (e.g. a menu whose attempts are used up).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ari.errors import CALL_GONE, AriError, AriNotFound
from core.vocabulary import utcnow
from ivr.speech.events import Recognized, SpeechEvent, SpeechStarted
from ivr.store import CallState

if TYPE_CHECKING:
    from ivr.services import CallServices
    from ivr.speech.listener import Listener

log = logging.getLogger(__name__)

#: DTMF key -> menu choice of the main menu.
MAIN_MENU: dict[str, str] = {"1": "complaint", "2": "report", "3": "consultation", "0": "operator"}
NO_INPUT_TIMER = "no_input"


class Call:
    """Everything a state needs about one call: its stored state and the services."""

    def __init__(self, state: CallState, services: CallServices) -> None:
        self.data = state
        self.svc = services
        self.playback_id: str | None = None
        self.timer_token: int | None = None
        #: Prompts to say before the next state's own (e.g. "too many attempts").
        self.announce: list[str] = []
        #: The call's speech pipeline, from the first listening menu on (not stored: a
        #: restarted process builds a new one).
        self.listener: Listener | None = None
        #: The caller is talking (voice activity seen, no result yet).
        self.speaking = False

    @property
    def key(self) -> str:
        return self.data.channel_id

    async def play(self, *prompt_keys: str) -> str | None:
        """Play prompts as one playback; ``None`` when the caller is already gone."""
        # Prompt keys, or media URIs as they are ("number:3" says a number in the call's language).
        media = [k if ":" in k else self.svc.prompts.media(k) for k in prompt_keys]
        try:
            playback = await self.svc.ari.play(
                self.key, media, playback_id=self.svc.new_id(), lang=self.svc.language
            )
        except CALL_GONE:
            return None
        self.playback_id = playback.id
        return playback.id

    async def stop_prompt(self) -> None:
        """Barge-in: the caller acted, so the prompt stops at once."""
        playback_id, self.playback_id = self.playback_id, None
        if playback_id is None:
            return
        try:
            await self.svc.ari.stop_playback(playback_id)
        except CALL_GONE:
            pass  # already finished: nothing to stop

    async def prompt_ended_unseen(self) -> str | None:
        """The id of the prompt this call waits for if it has ended although no
        PlaybackFinished came (it was lost with the events connection); None otherwise."""
        playback_id = self.playback_id
        if playback_id is None:
            return None
        try:
            await self.svc.ari.get_playback(playback_id)
        except AriNotFound:
            return playback_id
        except AriError as exc:
            log.warning("call %s: whether prompt %s ended is unknown: %s", self.data.call_id, playback_id, exc)
        return None

    async def barge_in(self, timer: str) -> None:
        """The caller started talking: the prompt stops and the silence timer with it."""
        self.speaking = True
        self.cancel_timer(timer)
        await self.stop_prompt()

    async def start_music(self) -> bool:
        """Music on hold on, in the configured class (Asterisk's ``default`` class may not exist:
        then the caller hears nothing at all, FIELD-NOTES); False when it could not be started."""
        try:
            await self.svc.ari.start_moh(self.key, self.svc.moh_class)
        except CALL_GONE:
            return False  # the caller left; the hang-up events end the call
        except AriError as exc:
            log.warning("music on hold failed for call %s: %s", self.data.call_id, exc)
            return False
        return True

    async def stop_music(self) -> None:
        """Music on hold off (before a prompt or a bridge); already off is fine."""
        try:
            await self.svc.ari.stop_moh(self.key)
        except AriError:
            pass

    async def hang_up(self) -> None:
        """Close the caller's line; the hang-up events then end the call as usual."""
        try:
            await self.svc.ari.hangup(self.key)
        except CALL_GONE:
            pass  # already gone

    async def listen(self, menu: str) -> bool:
        """Let the caller say their choice in ``menu``; False means DTMF only this time."""
        self.speaking = False
        listeners = self.svc.listeners
        if listeners is None:
            return False
        if self.listener is None or self.listener.closed:
            self.listener = await listeners.open(self.key)
            if self.listener is None:
                return False
        return self.listener.listen(menu)

    def stop_listening(self) -> None:
        self.speaking = False
        if self.listener is not None:
            self.listener.stop_listening()

    async def close_listener(self) -> None:
        """The call leaves the menus: give back the recognizer and the helper channels now."""
        self.speaking = False
        if self.listener is not None:
            await self.listener.close()

    def start_timer(self, name: str, seconds: float) -> None:
        self.timer_token = self.svc.timers.start(self.key, name, seconds)

    def cancel_timer(self, name: str) -> None:
        self.svc.timers.cancel(self.key, name)
        self.timer_token = None


class State(Protocol):
    name: ClassVar[str]

    async def enter(self, call: Call) -> State: ...
    async def resume(self, call: Call) -> State: ...
    async def on_dtmf(self, call: Call, digit: str) -> State: ...
    async def on_playback_finished(self, call: Call, playback_id: str) -> State: ...
    async def on_timer(self, call: Call, name: str, token: int) -> State: ...
    async def on_speech(self, call: Call, event: SpeechEvent) -> State: ...


class BaseState:
    """Defaults: ignore inputs that mean nothing in this state."""

    name: ClassVar[str] = "base"
    #: Platform outcome when the caller hangs up in this state.
    outcome_on_hangup: ClassVar[str] = "abandoned_in_menu"

    async def enter(self, call: Call) -> State:
        return self

    async def resume(self, call: Call) -> State:
        """After an application restart: pick the call up again from this state."""
        return await self.enter(call)

    async def on_dtmf(self, call: Call, digit: str) -> State:
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        return self

    async def on_timer(self, call: Call, name: str, token: int) -> State:
        return self

    async def on_speech(self, call: Call, event: SpeechEvent) -> State:
        return self

    async def on_offer(self, call: Call, offer: Any) -> State:
        """An agent was assigned to this call (queues); states that do not wait refuse it."""
        return self

    async def on_helper_entered(self, call: Call, channel_id: str) -> State:
        """A channel we made for this call (e.g. the agent's leg) entered Stasis."""
        return self

    async def on_helper_gone(self, call: Call, channel_id: str, cause: int) -> State:
        """A channel we made for this call was destroyed."""
        return self

    async def on_hold(self, call: Call, channel_id: str, held: bool, music_class: str | None) -> State:
        """``channel_id`` (the caller's or one we made for the call) put the call on hold
        (``held``) or took it back; ``music_class`` is what its phone asked for, if anything."""
        return self

    async def on_caller_gone(self, call: Call) -> None:
        """The caller hung up in this state: release what the state holds (agents, queues)."""

    async def on_resync(self, call: Call) -> State:
        """The events connection came back and the call is still live (ARI replays nothing):
        act on what this state was waiting for and may have missed meanwhile. By default, the
        prompt it waits for: ended unseen, it is taken as finished now (else the caller would
        sit in silence, the menu's no-input timer never started, the music never begun)."""
        ended = await call.prompt_ended_unseen()
        if ended is not None:
            log.info("call %s: prompt %s ended while events were lost", call.data.call_id, ended)
            return await self.on_playback_finished(call, ended)
        return self


@dataclass
class Answering(BaseState):
    name: ClassVar[str] = "answering"

    async def enter(self, call: Call) -> State:
        try:
            await call.svc.ari.answer(call.key)
        except CALL_GONE:
            return Ended()
        return Welcome()


@dataclass
class Welcome(BaseState):
    name: ClassVar[str] = "welcome"

    async def enter(self, call: Call) -> State:
        await call.play(f"welcome_{call.data.business_line}", "recording_notice")
        return self

    async def resume(self, call: Call) -> State:
        # The caller heard (part of) the welcome before the restart: go on to the menu.
        return MainMenu()

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        return MainMenu() if playback_id == call.playback_id else self

    async def on_dtmf(self, call: Call, digit: str) -> State:
        # Callers who know the menu may key their choice during the welcome.
        await call.stop_prompt()
        return await MainMenu().on_dtmf(call, digit)


@dataclass
class MainMenu(BaseState):
    name: ClassVar[str] = "main_menu"
    #: Why the menu is (re)played: "" the first time, else "no_input" / "no_match".
    reason: str = ""

    async def enter(self, call: Call) -> State:
        if call.data.attempt > call.svc.max_attempts:
            return Routed(choice="operator", reason="too_many_attempts")
        # Listening starts before the prompt, so that a caller who knows what to say can
        # say it over the prompt (barge-in).
        await call.listen(self.name)
        prompts = [self.reason, "main_menu"] if self.reason else ["main_menu"]
        await call.play(*prompts)
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        if playback_id == call.playback_id:
            call.playback_id = None
            call.start_timer(NO_INPUT_TIMER, call.svc.no_input_timeout_s)
        return self

    async def on_timer(self, call: Call, name: str, token: int) -> State:
        if name != NO_INPUT_TIMER or token != call.timer_token:
            return self  # a stale timer from an earlier prompt
        if call.speaking:
            return self  # mid-sentence: the recognizer decides (its detector caps an utterance)
        call.stop_listening()
        call.data.menu_path.append("main_menu:timeout")
        return self._retry(call, "no_input")

    async def on_speech(self, call: Call, event: SpeechEvent) -> State:
        if isinstance(event, SpeechStarted):
            await call.barge_in(NO_INPUT_TIMER)
            return self
        assert isinstance(event, Recognized)
        call.speaking = False
        call.data.transcript, call.data.confidence = event.transcript or None, event.confidence
        if event.choice is None:
            call.data.menu_path.append(f"main_menu:speech:{event.reason}")
            return self._retry(call, "no_input" if event.reason == "timeout" else "no_match")
        call.data.menu_path.append(f"main_menu:speech:{event.choice}")
        call.data.recognized_by = "speech"
        return Routed(choice=event.choice)

    async def on_dtmf(self, call: Call, digit: str) -> State:
        # A key pressed at any moment wins over speech, even mid-sentence.
        call.stop_listening()
        call.cancel_timer(NO_INPUT_TIMER)
        await call.stop_prompt()
        choice = MAIN_MENU.get(digit)
        if choice is None:
            call.data.menu_path.append(f"main_menu:{digit}:no_match")
            return self._retry(call, "no_match")
        call.data.menu_path.append(f"main_menu:{digit}:{choice}")
        call.data.recognized_by = "dtmf"
        return Routed(choice=choice)

    def _retry(self, call: Call, reason: str) -> State:
        call.data.attempt += 1
        return MainMenu(reason=reason)


@dataclass
class Routed(BaseState):
    """The IVR has decided; the call goes to the queue for its line and choice."""

    name: ClassVar[str] = "routed"
    outcome_on_hangup: ClassVar[str] = "abandoned_in_queue"
    choice: str = "operator"
    reason: str = ""

    async def enter(self, call: Call) -> State:
        await call.close_listener()
        call.data.choice = call.data.choice or self.choice
        call.data.queued_at = call.data.queued_at or utcnow()
        if self.reason:
            call.data.menu_path.append(f"main_menu:{self.reason}")
            call.announce.append(self.reason)
        return await call.svc.router.route(call)

    async def resume(self, call: Call) -> State:
        return await call.svc.router.route(call)


@dataclass
class Waiting(BaseState):
    """Told that they are queued, then held with music until an agent is connected."""

    name: ClassVar[str] = "waiting"
    outcome_on_hangup: ClassVar[str] = "abandoned_in_queue"

    async def enter(self, call: Call) -> State:
        notice = "transfer_operator" if call.data.choice == "operator" else "queued"
        prompts, call.announce = [*call.announce, notice], []
        if await call.play(*prompts) is None:
            return Ended()
        return self

    async def resume(self, call: Call) -> State:
        await self._hold(call)
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        if playback_id == call.playback_id:
            call.playback_id = None
            await self._hold(call)
        return self

    async def _hold(self, call: Call) -> None:
        await call.start_music()


@dataclass
class Ended(BaseState):
    name: ClassVar[str] = "ended"


STATES: dict[str, type[BaseState]] = {
    cls.name: cls for cls in (Answering, Welcome, MainMenu, Routed, Waiting, Ended)
}


def register_states(*classes: type[BaseState]) -> None:
    """States of other features (queues), so that a restarted process can restore them."""
    for cls in classes:
        STATES[cls.name] = cls


def restore_state(call: Call) -> BaseState:
    """Rebuild the state object a stored call was in."""
    cls = STATES.get(call.data.state, Answering)
    if cls is Routed:
        return Routed(choice=call.data.choice or "operator")
    return cls()


class CallFlow:
    """Runs one call's state machine; all calls into it come from that call's event FIFO."""

    def __init__(self, call: Call, state: BaseState) -> None:
        self.call = call
        self.state: BaseState = state

    async def begin(self) -> None:
        # Latency: the answer and the first prompt go out before any storage round trip.
        # Safe, because a call whose state was never stored is started afresh by the resync.
        await self._move(await self.state.enter(self.call), store_first=False)

    async def resume(self) -> None:
        await self._move(await self.state.resume(self.call))

    async def resync(self) -> None:
        """Still live after the events connection came back: see :meth:`BaseState.on_resync`."""
        await self._move(await self.state.on_resync(self.call))

    async def dtmf(self, digit: str) -> None:
        await self._move(await self.state.on_dtmf(self.call, digit))

    async def playback_finished(self, playback_id: str) -> None:
        await self._move(await self.state.on_playback_finished(self.call, playback_id))

    async def timer(self, name: str, token: int) -> None:
        await self._move(await self.state.on_timer(self.call, name, token))

    async def speech(self, event: SpeechEvent) -> None:
        await self._move(await self.state.on_speech(self.call, event))

    async def react(self, reaction: Callable[[BaseState, Call], Awaitable[State]]) -> None:
        """Any other input, for features beyond the menus (queues): ``reaction(state, call)``."""
        await self._move(await reaction(self.state, self.call))

    async def _move(self, nxt: State, *, store_first: bool = True) -> None:
        while nxt is not self.state:
            log.debug("call %s: %s -> %s", self.call.data.call_id, self.state.name, nxt.name)
            self.state = nxt  # type: ignore[assignment]
            self.call.data.state = nxt.name
            if store_first or isinstance(nxt, Ended):
                # Stored before the state's commands go out: whatever the caller hears
                # next (a choice confirmed, "you are queued") survives a crash of ours.
                await self._persist()
            if isinstance(nxt, Ended):
                return
            nxt = await nxt.enter(self.call)
        if not store_first:
            await self._persist()

    async def _persist(self) -> None:
        await self.call.svc.persist(self.call.data)
