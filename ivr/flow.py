"""The IVR's menus as call states: answering, the welcome, the main menu (with its confirmation
turn for a choice heard by a thin margin), and the hand-over to wherever a decided call goes
(the queues, or a hold where they are off).

The states follow the call core's rules (:mod:`calls.flow`). What they need beyond the call
(where a decided call goes, how many tries a caller gets) is :class:`Menus`, given to each
state by its constructor; :func:`register_states` tells the call core how to rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from ari.errors import CALL_GONE
from calls.call import Call
from calls.flow import BaseState, Ended, State
from calls.registry import StateRegistry
from calls.speech import SpeechEvent
from calls.store import CallState
from core.vocabulary import utcnow
from ivr.speech.menus import CONFIRM_MENU, MAIN_MENU

NO_INPUT_TIMER = "no_input"
#: The speech menu of the confirmation turn (yes / no), in every locale pack.
CONFIRM = "confirm"
#: Where a choice heard by a thin margin is written in the menu path (and found again after a restart).
TO_CONFIRM = "main_menu:speech:confirm:"


class Router(Protocol):
    """Where a call goes once the IVR has decided (the queue service implements this)."""

    async def route(self, call: Call) -> State: ...


@dataclass
class Menus:
    """What the menu states need beyond the call; one per application, shared by its states."""

    #: :class:`HoldRouter` until a queue service takes the decided calls (set before the first call).
    router: Router
    #: Tries at the main menu before the caller is put through to an operator.
    max_attempts: int


@dataclass
class Answering(BaseState):
    name: ClassVar[str] = "answering"
    menus: Menus

    async def enter(self, call: Call) -> State:
        if call.answered:  # by the dialplan, before Stasis
            return Welcome(self.menus)
        try:
            await call.svc.ari.answer(call.key)
        except CALL_GONE:
            return Ended()
        return Welcome(self.menus)


def welcome_prompts(call: Call) -> tuple[str, str]:
    """The call's line's welcome, then the notice that calls are recorded."""
    return f"welcome_{call.data.business_line}", "recording_notice"


@dataclass
class Welcome(BaseState):
    name: ClassVar[str] = "welcome"
    menus: Menus

    async def enter(self, call: Call) -> State:
        if not call.may_listen:
            # DTMF only: the welcome and the menu go as one playback (a request, its end's
            # event and a state saved fewer a call). With speech, the menu listens and the
            # welcome does not: a caller's "hello?" over it is no answer to the menu.
            return MainMenu(self.menus, welcome=True)
        await call.play(*welcome_prompts(call))
        return self

    async def resume(self, call: Call) -> State:
        # The caller heard (part of) the welcome before the restart: go on to the menu.
        return MainMenu(self.menus)

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        return MainMenu(self.menus) if playback_id == call.playback_id else self

    async def on_dtmf(self, call: Call, digit: str) -> State:
        # Callers who know the menu may key their choice during the welcome.
        await call.stop_prompt()
        return await MainMenu(self.menus).on_dtmf(call, digit)


@dataclass
class MainMenu(BaseState):
    name: ClassVar[str] = "main_menu"
    menus: Menus
    #: Why the menu is (re)played: "" the first time, else "no_input" / "no_match".
    reason: str = ""
    #: The welcome goes before the menu in the same playback (a call without speech; not
    #: stored: a call resumed in the menu hears the menu alone).
    welcome: bool = False

    async def enter(self, call: Call) -> State:
        if call.data.attempt > self.menus.max_attempts:
            return Routed(self.menus, choice="operator", reason="too_many_attempts")
        # Listening starts before the prompt, so that a caller who knows what to say can
        # say it over the prompt (barge-in).
        await call.listen(self.name, can_ask=True)
        prompts = [self.reason, "main_menu"] if self.reason else ["main_menu"]
        if self.welcome:
            prompts = [*welcome_prompts(call), *prompts]
        await call.play(*prompts)
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        call.question_asked(playback_id, NO_INPUT_TIMER)
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
        heard = await call.answer_heard(event, NO_INPUT_TIMER)
        if heard is None:
            return self
        event = heard
        call.data.transcript, call.data.confidence = event.transcript or None, event.confidence
        if event.reason == "confirm" and event.proposed is not None:
            # Heard, but not by a margin safe enough to send the caller down a branch on it.
            call.data.menu_path.append(TO_CONFIRM + event.proposed)
            return ConfirmChoice(self.menus, choice=event.proposed)
        if event.choice is None:
            call.data.menu_path.append(f"main_menu:speech:{event.reason}")
            return self._retry(call, "no_input" if event.reason == "timeout" else "no_match")
        call.data.menu_path.append(f"main_menu:speech:{event.choice}")
        call.data.recognized_by = "speech"
        return Routed(self.menus, choice=event.choice)

    async def on_dtmf(self, call: Call, digit: str) -> State:
        await call.key_pressed(NO_INPUT_TIMER)
        choice = MAIN_MENU.get(digit)
        if choice is None:
            call.data.menu_path.append(f"main_menu:{digit}:no_match")
            return self._retry(call, "no_match")
        call.data.menu_path.append(f"main_menu:{digit}:{choice}")
        call.data.recognized_by = "dtmf"
        return Routed(self.menus, choice=choice)

    def _retry(self, call: Call, reason: str) -> State:
        call.data.attempt += 1
        return MainMenu(self.menus, reason=reason)


@dataclass
class ConfirmChoice(BaseState):
    """"You said complaint: press 1 or say yes, press 2 or say no", for a choice the recognizer
    heard by a thin margin. Yes goes on with the choice; no goes back to the menu; silence or an
    answer not understood is asked once more, then the menu again (an attempt, either way)."""

    name: ClassVar[str] = "confirm_choice"
    menus: Menus
    choice: str = "operator"
    #: 1 for the question, 2 for its one retry.
    attempt: int = 1
    #: Why the question is asked again: "no_input" / "no_match" (a prompt key), "" at first.
    reason: str = ""

    async def enter(self, call: Call) -> State:
        await call.listen(CONFIRM)
        question = f"confirm_{self.choice}"
        await call.play(*([self.reason, question] if self.reason else [question]))
        return self

    async def on_playback_finished(self, call: Call, playback_id: str) -> State:
        call.question_asked(playback_id, NO_INPUT_TIMER)
        return self

    async def on_timer(self, call: Call, name: str, token: int) -> State:
        if name != NO_INPUT_TIMER or token != call.timer_token or call.speaking:
            return self
        call.stop_listening()
        return self._not_understood(call, "timeout", "no_input")

    async def on_speech(self, call: Call, event: SpeechEvent) -> State:
        heard = await call.answer_heard(event, NO_INPUT_TIMER)
        if heard is None:
            return self
        event = heard
        # A yes or no heard by a thin margin is taken all the same: a misheard yes accepts the
        # choice the menu already heard best, a misheard no asks the menu again; asking to
        # confirm the confirmation would only make the caller repeat themselves.
        answer = event.choice or event.proposed
        if answer is None:
            return self._not_understood(call, event.reason, "no_input" if event.reason == "timeout" else "no_match")
        return self._answer(call, answer, "speech")

    async def on_dtmf(self, call: Call, digit: str) -> State:
        await call.key_pressed(NO_INPUT_TIMER)
        answer = CONFIRM_MENU.get(digit)
        if answer is None:
            return self._not_understood(call, digit, "no_match")
        return self._answer(call, answer, digit)

    def _answer(self, call: Call, answer: str, how: str) -> State:
        call.data.menu_path.append(f"confirm:{how}:{answer}")
        if answer == "yes":
            call.data.recognized_by = "speech"  # the choice was spoken; the caller confirmed it
            return Routed(self.menus, choice=self.choice)
        call.data.attempt += 1
        return MainMenu(self.menus, reason="choose_again")

    def _not_understood(self, call: Call, heard: str, reason: str) -> State:
        call.data.menu_path.append(f"confirm:{heard}:{reason}")
        if self.attempt < 2:
            return ConfirmChoice(self.menus, choice=self.choice, attempt=self.attempt + 1, reason=reason)
        call.data.attempt += 1
        return MainMenu(self.menus, reason=reason)


def _confirming(menus: Menus, data: CallState) -> State:
    """A call restored in its confirmation turn: the choice it was asking about is the last one
    the menu path says was heard; without one, the menu."""
    proposed = [e.removeprefix(TO_CONFIRM) for e in data.menu_path if e.startswith(TO_CONFIRM)]
    return ConfirmChoice(menus, choice=proposed[-1]) if proposed else MainMenu(menus)


@dataclass
class Routed(BaseState):
    """The IVR has decided; the call goes to the queue for its line and choice."""

    name: ClassVar[str] = "routed"
    outcome_on_hangup: ClassVar[str] = "abandoned_in_queue"
    # Routing acts first in Redis (the queue's script) or in the next state, saved before its
    # own acts: this save needs no round trip of its own (issue 15). Only the listener's
    # hang-up goes before it, which a resumed menu makes good.
    saved_ahead: ClassVar[bool] = True
    menus: Menus
    choice: str = "operator"
    reason: str = ""

    async def enter(self, call: Call) -> State:
        await call.close_listener()
        call.data.choice = call.data.choice or self.choice
        call.data.queued_at = call.data.queued_at or utcnow()
        if self.reason:
            call.data.menu_path.append(f"main_menu:{self.reason}")
            call.announce.append(self.reason)
        return await self.menus.router.route(call)

    async def resume(self, call: Call) -> State:
        return await self.menus.router.route(call)


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


class HoldRouter:
    """Until a queue engine is plugged in: tell the caller they are queued and hold them."""

    async def route(self, call: Call) -> State:
        return Waiting()


def register_states(registry: StateRegistry, menus: Menus) -> None:
    """The IVR's states, so that a restarted process can restore them; new calls begin answering."""
    registry.register_first(lambda: Answering(menus))
    registry.register(Answering.name, lambda data: Answering(menus))
    registry.register(Welcome.name, lambda data: Welcome(menus))
    registry.register(MainMenu.name, lambda data: MainMenu(menus))
    registry.register(ConfirmChoice.name, lambda data: _confirming(menus, data))
    registry.register(Routed.name, lambda data: Routed(menus, choice=data.choice or "operator"))
    registry.register(Waiting.name, lambda data: Waiting())
