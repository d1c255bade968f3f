"""Music on hold that the project owns: generated here, so there is no licence to clear.

A source build of Asterisk ships no music, and a class without files answers ``POST /moh``
with 204 and then sends callers nothing at all (FIELD-NOTES). These pieces are soft
arpeggios of plain chords, made from sine waves with gentle envelopes: pleasant enough
through G.711, never silent, and the same bytes on every machine (no randomness).
"""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path

SAMPLE_RATE = 8000
#: Semitones above A3 (220 Hz) of the chords, one bar each.
_PIECES: dict[str, list[list[int]]] = {
    "hotline-1": [[3, 7, 10, 15], [10, 14, 17, 22], [12, 15, 19, 24], [8, 12, 15, 20]],
    "hotline-2": [[5, 9, 12, 17], [0, 4, 7, 12], [2, 5, 9, 14], [7, 11, 14, 19]],
}
_NOTE_S = 0.375
_BARS = 5  # repeats of the progression: about 30 s a piece


def _note(freq: float, seconds: float, amplitude: float) -> list[float]:
    n = int(seconds * SAMPLE_RATE)
    attack, out = int(0.02 * SAMPLE_RATE), []
    for i in range(n):
        env = min(1.0, i / attack) * math.exp(-2.2 * i / n)
        # A little of the octave above makes it less like a test tone.
        s = math.sin(2 * math.pi * freq * i / SAMPLE_RATE) + 0.25 * math.sin(4 * math.pi * freq * i / SAMPLE_RATE)
        out.append(amplitude * env * s)
    return out


def piece(name: str) -> bytes:
    """16-bit little-endian mono samples of one piece."""
    chords = _PIECES[name]
    samples: list[float] = []
    for _ in range(_BARS):
        for chord in chords:
            for semitone in chord:
                samples.extend(_note(220.0 * 2 ** (semitone / 12), _NOTE_S, 9000.0))
    return array.array("h", (max(-32767, min(32767, int(s))) for s in samples)).tobytes()


def write_music(directory: Path) -> list[Path]:
    """Write every piece as 8 kHz mono 16-bit WAV (Asterisk plays it to G.711 without resampling)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _PIECES:
        path = directory / f"{name}.wav"
        tmp = path.with_suffix(".tmp")
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(piece(name))
        tmp.replace(path)
        written.append(path)
    return written
