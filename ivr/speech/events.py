"""What the recognizer reports about a caller's speech (no Vosk needed to read them).

Call flows import these, so that the IVR runs (DTMF only) where no speech model is installed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started talking (voice activity): barge-in stops the prompt."""

    at_ms: int


@dataclass(frozen=True)
class Recognized:
    """The end of one utterance: a choice of the menu, or ``None`` for no match.

    ``reason`` is "match", "no_match" (heard, but not a phrase of the menu) or "timeout"
    (nothing was said before the menu gave up).
    """

    choice: str | None
    transcript: str
    confidence: float
    reason: str


SpeechEvent = SpeechStarted | Recognized
