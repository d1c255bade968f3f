"""One live call as its states see it: its stored state, what it is playing and hearing, and
the services every state may use.

Features reach their own services through their states' constructors (see
:mod:`ivr.flow`, :mod:`queues.flow`); :class:`CallServices` holds only what any call needs.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ari.dispatcher import Timers
from ari.errors import CALL_GONE, AriError, AriNotFound
from ari.rest import AriRest
from calls.speech import Recognized, SpeechEvent, SpeechListener, SpeechListeners, SpeechStarted
from calls.store import CallState, CallStateStore

log = logging.getLogger(__name__)


class Prompts(Protocol):
    """Prompt keys to Asterisk media URIs (``ivr.prompts.PromptCatalogue``)."""

    def media(self, key: str) -> str: ...


class RecordSink(Protocol):
    """Takes call-record rows without waiting for the database (``callrecords.services.CallRecordWriter``)."""

    def save(self, snapshot: dict[str, Any]) -> None: ...
    def when_written(self, call_id: str, then: Callable[[], None]) -> None: ...


@dataclass
class CallServices:
    """What call states may use; built once by the composition root."""

    ari: AriRest
    prompts: Prompts
    timers: Timers
    store: CallStateStore
    records: RecordSink
    language: str
    #: How long a menu (of any feature) waits for a key or a word after its prompt.
    no_input_timeout_s: float
    #: Speech menus; None where no model is installed (DTMF only).
    listeners: SpeechListeners | None = None
    #: The music on hold class callers hear (``[ivr] moh_class``; musiconhold.conf).
    moh_class: str = "hotline"

    def __post_init__(self) -> None:
        # Playback ids: unique per process start, cheap to make (no uuid4 on the hot path).
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]

    def new_id(self) -> str:
        return f"pb-{self._run}-{next(self._ids)}"

    async def persist(self, state: CallState, *, new: bool = True, ahead: bool = False) -> None:
        """The live state in Redis and the call's record; ``new``: see :meth:`CallStateStore.save`;
        ``ahead``: with the next Redis command (:meth:`CallStateStore.save_ahead`), else written
        now, its reply not waited for (:meth:`CallStateStore.tell`): stored before the state's
        acts go out either way."""
        if ahead:
            await self.store.save_ahead(state, new=new)
        else:
            await self.store.tell(state, new=new)
        self.records.save(state.to_record())


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
        self.listener: SpeechListener | None = None
        #: The caller is talking (voice activity seen, no result yet).
        self.speaking = False
        #: This process has stored the call in Redis (and in the set of live calls) since the
        #: call began or was resumed here: later saves only overwrite it.
        self.stored = False
        #: Music on hold on the caller's channel: False until this process starts it, None
        #: when unknown (a call resumed after a restart, a request that got no clear answer).
        self.music_on: bool | None = False
        #: The caller's channel was Up when the call came to us (the dialplan answers before
        #: Stasis): the IVR's answering then sends no request of its own.
        self.answered = False

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

    async def key_pressed(self, timer: str) -> None:
        """The caller keyed an answer to a question asked with ``timer``: a key wins over speech,
        even mid-sentence; the prompt and the silence timer stop."""
        self.stop_listening()
        self.cancel_timer(timer)
        await self.stop_prompt()

    async def answer_heard(self, event: SpeechEvent, timer: str) -> Recognized | None:
        """A speech event of a question asked with ``timer``: None when the caller just began
        (the prompt stops: :meth:`barge_in`), else what the recognizer made of the answer."""
        if isinstance(event, SpeechStarted):
            await self.barge_in(timer)
            return None
        self.speaking = False
        return event

    async def start_music(self) -> bool:
        """Music on hold on, in the configured class (Asterisk's ``default`` class may not exist:
        then the caller hears nothing at all, FIELD-NOTES); False when it could not be started."""
        try:
            await self.svc.ari.start_moh(self.key, self.svc.moh_class)
        except CALL_GONE:
            self.music_on = None
            return False  # the caller left; the hang-up events end the call
        except AriError as exc:
            self.music_on = None
            log.warning("music on hold failed for call %s: %s", self.data.call_id, exc)
            return False
        self.music_on = True
        return True

    async def stop_music(self) -> None:
        """Music on hold off (before a prompt or a bridge); already off is fine."""
        with contextlib.suppress(AriError):
            await self.end_music()

    async def end_music(self) -> None:
        """Music on hold off, a failure raised (:class:`AriError`): for a step whose failure
        matters (connecting an agent). Afterwards ``music_on`` says what is known."""
        try:
            await self.svc.ari.stop_moh(self.key)
        except AriError:
            self.music_on = None
            raise
        self.music_on = False

    async def hang_up(self) -> None:
        """Close the caller's line; the hang-up events then end the call as usual."""
        try:
            await self.svc.ari.hangup(self.key)
        except CALL_GONE:
            pass  # already gone

    @property
    def may_listen(self) -> bool:
        """Whether the caller may be heard at all (speech is on in this process); a menu's
        :meth:`listen` may still fall back to DTMF (no recognizer free)."""
        return self.svc.listeners is not None

    async def listen(self, menu: str, *, can_ask: bool = False) -> bool:
        """Let the caller say their choice in ``menu``; False means DTMF only this time.
        ``can_ask``: the menu asks the caller to confirm a choice heard by a thin margin (a
        confirmation turn); on a noisy line every choice is then asked about."""
        self.speaking = False
        listeners = self.svc.listeners
        if listeners is None:
            return False
        if self.listener is None or self.listener.closed:
            self.listener = await listeners.open(self.key)
            if self.listener is None:
                return False
        return self.listener.listen(menu, can_ask=can_ask)

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

    def question_asked(self, playback_id: str, timer: str) -> None:
        """``playback_id`` ended: if it was the question (not an earlier prompt), the caller's
        time to answer starts, on ``timer``."""
        if playback_id == self.playback_id:
            self.playback_id = None
            self.start_timer(timer, self.svc.no_input_timeout_s)

    def cancel_timer(self, name: str) -> None:
        self.svc.timers.cancel(self.key, name)
        self.timer_token = None
