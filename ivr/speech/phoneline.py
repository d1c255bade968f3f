"""Speech as a telephone call delivers it to our recognizer, made from text.

espeak-ng speaks the text, sox resamples it to the 8 kHz of the line, G.711 μ-law carries it
(encoded and decoded, as a PSTN or mobile call does), and our own codec brings it back to the
16 kHz the recognizer takes, the way the RTP receiver does. ``hotline speech check-grammar``
runs every phrase of a locale pack through this before it ships; the tests' callers
(``tests/support/speech.py``) use the same line, so what the check hears is what they hear.

Nothing here is on the call path: it runs two tools per phrase and blocks while they do.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import numpy as np

from ivr.prompts.build import PromptBuildError, find_tools
from ivr.speech.codec import downsample_16k_to_8k, pcm_to_bytes, ulaw_decode, ulaw_encode, upsample_8k_to_16k

#: The telephone line's sample rate: G.711 carries 8 kHz.
LINE_RATE = 8_000


class SynthesisError(RuntimeError):
    """espeak-ng or sox is missing or failed; the message says which and what to do."""


def tools() -> dict[str, str]:
    """Paths of espeak-ng and sox; :class:`SynthesisError` naming the package if one is missing."""
    try:
        return find_tools()
    except PromptBuildError as exc:
        raise SynthesisError(str(exc)) from None


def speak(
    text: str,
    voice: str,
    *,
    speed: int | None = None,
    pitch: int | None = None,
    found: Mapping[str, str] | None = None,
) -> np.ndarray:
    """``text`` said by espeak-ng ``voice`` (words a minute, pitch 0-99), as 8 kHz int16 samples.

    ``voice`` may carry an espeak-ng variant ("ko+f2"). None for speed or pitch: espeak-ng's own.
    """
    paths = found or tools()
    options = [*(["-s", str(speed)] if speed else []), *(["-p", str(pitch)] if pitch else [])]
    # Text on stdin: nothing in it can be taken for an option.
    wav = _run([paths["espeak-ng"], "-v", voice, *options, "--stdout", "--stdin"], text.encode(),
               f"espeak-ng (voice {voice})")
    # -R: sox's dither seeded the same every time, so the same text always gives the same
    # audio (a different ±1 LSB can flip an utterance that sits on a decision edge).
    raw = _run([paths["sox"], "-R", "-t", "wav", "-", "-t", "raw", "-c", "1", "-b", "16", "-e", "signed-integer",
                "-", "rate", str(LINE_RATE)], wav, f"sox (voice {voice})")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def telephone_line(narrowband: np.ndarray) -> bytes:
    """8 kHz samples through G.711 μ-law and back, then 16 kHz 16-bit LE PCM (what Vosk gets)."""
    received = ulaw_decode(ulaw_encode(np.asarray(narrowband, dtype=np.int16)))
    return pcm_to_bytes(upsample_8k_to_16k(received))


def carry(wideband: np.ndarray) -> bytes:
    """Any 16 kHz signal (a tone, noise, a mix of voices) through the same line."""
    clipped = np.clip(np.rint(wideband), -32768, 32767).astype(np.int16)
    return telephone_line(downsample_16k_to_8k(clipped))


def say_on_line(
    text: str,
    voice: str,
    *,
    speed: int | None = None,
    pitch: int | None = None,
    found: Mapping[str, str] | None = None,
) -> bytes:
    """``text`` spoken and carried by the line: 16 kHz 16-bit LE PCM."""
    return telephone_line(speak(text, voice, speed=speed, pitch=pitch, found=found))


def _run(cmd: list[str], stdin: bytes, what: str) -> bytes:
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        detail = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise SynthesisError(f"{what} failed: {detail}")
    return result.stdout
