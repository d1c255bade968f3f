"""What a phone heard: find known sounds (prompts, music) in received audio, in order.

Asterisk transcodes our 8 kHz prompts to G.711 for the line, so the samples a caller
receives are the prompt's own, give or take the codec's rounding: a normalised
cross-correlation of a stretch of each prompt against the received audio finds where
(and whether) it was played, whatever came before it.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 8 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def pcm(samples: bytes) -> np.ndarray:
    return np.frombuffer(samples, dtype="<i2").astype(np.float64)


def _probe(sound: np.ndarray, seconds: float) -> np.ndarray:
    """The loudest stretch of ``seconds`` in a sound: silence would match anything."""
    n = min(len(sound), int(seconds * RATE))
    if len(sound) <= n:
        return sound
    energy = np.convolve(sound ** 2, np.ones(n), mode="valid")
    start = int(np.argmax(energy))
    return sound[start:start + n]


def find(sound: np.ndarray, heard: np.ndarray, *, seconds: float = 0.4, threshold: float = 0.8) -> int | None:
    """Sample offset in ``heard`` where the probe of ``sound`` is, or None."""
    probe = _probe(sound, seconds)
    n = len(probe)
    if len(heard) < n or not probe.any():
        return None
    size = 1 << int(np.ceil(np.log2(len(heard) + n)))
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(probe, size)), size)[: len(heard) - n + 1]
    window = np.convolve(heard ** 2, np.ones(n), mode="valid")
    score = corr / (np.sqrt(window * float(probe @ probe)) + 1e-9)
    best = int(np.argmax(score))
    return best if score[best] >= threshold else None


@dataclass(frozen=True)
class Heard:
    name: str
    at_s: float


def heard_in_order(sounds: dict[str, np.ndarray], heard: np.ndarray) -> list[Heard]:
    """Which of ``sounds`` were heard, sorted by when."""
    found = []
    for name, sound in sounds.items():
        offset = find(sound, heard)
        if offset is not None:
            found.append(Heard(name, offset / RATE))
    return sorted(found, key=lambda h: h.at_s)


def loud_seconds(heard: np.ndarray, *, floor: float = 300.0) -> float:
    """Seconds of ``heard`` whose 20 ms RMS is above ``floor`` (μ-law silence decodes to 0)."""
    frames = len(heard) // 160
    if not frames:
        return 0.0
    rms = np.sqrt((heard[: frames * 160].reshape(frames, 160) ** 2).mean(axis=1))
    return float((rms > floor).sum() * 0.02)


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    """A sine of ``freq`` Hz as 16-bit little-endian samples at 8 kHz (what a phone says, to
    be found again in what another phone heard: see :func:`tone_seconds`)."""
    t = np.arange(int(seconds * RATE)) / RATE
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def tone_seconds(heard: np.ndarray, freq: float, *, level: float = 1000.0) -> float:
    """Seconds of ``heard`` in which a sine of ``freq`` Hz is present with an amplitude of at
    least ``level``, whatever else is mixed with it (a supervisor hears caller and agent at
    once). Measured per 20 ms frame by its component at ``freq``: exact for a frequency that
    is a multiple of 50 Hz (a whole number of cycles per frame), which the tests use."""
    n = 160
    frames = len(heard) // n
    if not frames:
        return 0.0
    basis = np.exp(-2j * np.pi * freq * np.arange(n) / RATE)
    amplitude = 2 * np.abs(heard[: frames * n].reshape(frames, n) @ basis) / n
    return float((amplitude >= level).sum() * 0.02)
