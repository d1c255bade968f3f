"""What a call needs of speech recognition, without the recognizer: the events it reports and
the listeners that hear a caller.

The call core and the states of every feature speak these; :mod:`ivr.speech` implements them
(and needs Vosk), so calls run, DTMF only, where no speech model is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started talking (voice activity): barge-in stops the prompt."""

    at_ms: int


@dataclass(frozen=True)
class Recognized:
    """The end of one utterance: a choice of the menu, or ``None`` for no match.

    ``reason`` is "match", "no_match" (heard, but not a phrase of the menu), "timeout"
    (nothing was said before the menu gave up) or "confirm": the best hypothesis is a phrase
    of ``proposed``, but not by a margin wide enough to act on without asking the caller
    ("you said complaint?"). A confirm has no ``choice``, so a menu that does not ask treats
    it as the no match it is for that menu, never as a choice.
    """

    choice: str | None
    transcript: str
    confidence: float
    reason: str
    #: The choice to ask the caller about (reason "confirm"); None otherwise.
    proposed: str | None = None


SpeechEvent = SpeechStarted | Recognized


class SpeechListener(Protocol):
    """One call's ears, from its first listening menu on (``ivr.speech.listener.Listener``)."""

    closed: bool

    @property
    def helper_ids(self) -> tuple[str, ...]:
        """The channels and bridge made for listening (their events come to the call)."""
        ...

    def listen(self, menu: str, *, can_ask: bool = False) -> bool: ...
    def stop_listening(self) -> None: ...
    async def helper_entered(self, channel_id: str) -> None: ...
    async def close(self) -> None: ...


class SpeechListeners(Protocol):
    """Makes and keeps the listeners of all calls (``ivr.speech.listener.Listeners``)."""

    async def open(self, key: str) -> SpeechListener | None: ...
    def forget(self, key: str) -> None: ...
    def owned_ids(self) -> set[str]: ...
