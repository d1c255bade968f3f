"""A call's journey as explicit state classes, whichever feature they belong to.

Each state reacts to one kind of input (a digit, speech, the end of a prompt, a timer, a
channel made for the call) and returns the next state; returning ``self`` means "stay".
:class:`CallFlow` runs the transitions, persists the call state after each one and calls
``enter`` on every new state, which may itself move on (e.g. a menu whose attempts are used
up). The states themselves live in the features (``ivr.flow``, ``queues.flow``); a stored
call's state is rebuilt by name through :class:`calls.registry.StateRegistry`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from calls.call import Call
from calls.speech import SpeechEvent

log = logging.getLogger(__name__)

#: The outcome of a call that ends before a feature said otherwise: callers who hang up early
#: do so in the menus, where every call begins.
ABANDONED_IN_MENU = "abandoned_in_menu"


class State(Protocol):
    """What a call's flow asks of the state the call is in."""

    name: ClassVar[str]
    #: Platform outcome when the caller hangs up in this state.
    outcome_on_hangup: ClassVar[str]
    #: The state's first durable act is a Redis command (or the next state's save): its own
    #: save goes in the same write, ahead of it (see CallStateStore.save_ahead).
    saved_ahead: ClassVar[bool]

    async def enter(self, call: Call) -> State: ...
    async def resume(self, call: Call) -> State: ...
    async def on_dtmf(self, call: Call, digit: str) -> State: ...
    async def on_playback_finished(self, call: Call, playback_id: str) -> State: ...
    async def on_timer(self, call: Call, name: str, token: int) -> State: ...
    async def on_speech(self, call: Call, event: SpeechEvent) -> State: ...
    async def on_helper_entered(self, call: Call, channel_id: str) -> State: ...
    async def on_helper_gone(self, call: Call, channel_id: str, cause: int) -> State: ...
    async def on_hold(self, call: Call, channel_id: str, held: bool, music_class: str | None) -> State: ...
    async def on_caller_gone(self, call: Call) -> None: ...
    async def on_resync(self, call: Call) -> State: ...


#: A feature's input for one call, run in the call's FIFO: ``reaction(state, call)`` -> next state.
Reaction = Callable[[State, Call], Awaitable[State]]


class BaseState:
    """Defaults: ignore inputs that mean nothing in this state."""

    name: ClassVar[str] = "base"
    outcome_on_hangup: ClassVar[str] = ABANDONED_IN_MENU
    saved_ahead: ClassVar[bool] = False

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
class Ended(BaseState):
    name: ClassVar[str] = "ended"


class CallFlow:
    """Runs one call's state machine; all calls into it come from that call's event FIFO."""

    def __init__(self, call: Call, state: State) -> None:
        self.call = call
        self.state: State = state

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

    async def react(self, reaction: Reaction) -> None:
        """Any other input, for features beyond the menus (queues): ``reaction(state, call)``."""
        await self._move(await reaction(self.state, self.call))

    async def _move(self, nxt: State, *, store_first: bool = True) -> None:
        while nxt is not self.state:
            log.debug("call %s: %s -> %s", self.call.data.call_id, self.state.name, nxt.name)
            self.state = nxt
            self.call.data.state = nxt.name
            if store_first or isinstance(nxt, Ended):
                # Stored before the state's commands go out: whatever the caller hears
                # next (a choice confirmed, "you are queued") survives a crash of ours.
                await self._persist(ahead=nxt.saved_ahead)
            if isinstance(nxt, Ended):
                return
            nxt = await nxt.enter(self.call)
        if not store_first:
            await self._persist()

    async def _persist(self, *, ahead: bool = False) -> None:
        await self.call.svc.persist(self.call.data, new=not self.call.stored, ahead=ahead)
        self.call.stored = True
