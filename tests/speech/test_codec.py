"""Packet loss concealment (``codec.Concealer``): what fills the 20 ms a lost packet took out."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.codec import Concealer

RATE = 16_000
FRAME = 320  # 20 ms
JOIN = 64  # 4 ms


def vowel(n: int, pitch_hz: float = 140.0, rate: int = RATE) -> np.ndarray:
    """A steady voiced sound: a fundamental and a few harmonics, as a vowel has."""
    t = np.arange(n) / rate
    x = sum(np.sin(2 * np.pi * pitch_hz * k * t + k) / k for k in range(1, 6))
    return np.asarray(6000 * x, dtype=np.float64)


def frames_of(x: np.ndarray, size: int = FRAME) -> list[np.ndarray]:
    return [np.rint(x[i:i + size]).astype(np.int16) for i in range(0, len(x) - size + 1, size)]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def largest_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x.astype(np.float64))).max())


@pytest.mark.parametrize("rate", [16_000, 8_000], ids=["slin16", "ulaw at 8 kHz"])
def test_a_lost_frame_inside_a_vowel_carries_the_vowel_on_without_a_click(rate: int) -> None:
    frame = rate // 50
    truth = frames_of(vowel(frame * 12, rate=rate), frame)
    concealer = Concealer(rate, frame)
    heard = [concealer.real(f) for f in truth[:10]]
    made_up = concealer.conceal()
    # The first 10 ms are the voice itself, as it would have gone on ...
    assert correlation(made_up[: frame // 2], truth[10][: frame // 2]) > 0.9
    # ... joined to what came before without a step larger than the vowel's own.
    natural = largest_step(np.concatenate(truth[:10]))
    assert largest_step(np.concatenate([heard[-1], made_up])) <= 1.2 * natural


def test_the_real_audio_after_a_loss_is_cross_faded_in_without_a_click() -> None:
    truth = frames_of(vowel(FRAME * 14))
    concealer = Concealer(RATE, FRAME)
    for f in truth[:10]:
        concealer.real(f)
    made_up = [concealer.conceal(), concealer.conceal()]
    back = concealer.real(truth[12])
    natural = largest_step(np.concatenate(truth))
    assert largest_step(np.concatenate([*made_up, back])) <= 1.2 * natural
    assert np.array_equal(back[JOIN:], truth[12][JOIN:])  # exact once joined
    assert np.array_equal(concealer.real(truth[13]), truth[13])  # and after that untouched


def test_a_gap_is_held_10_ms_then_faded_out_by_60_ms_and_silent_after() -> None:
    concealer = Concealer(RATE, FRAME)
    voice = frames_of(vowel(FRAME * 10))
    for f in voice:
        concealer.real(f)
    gap = np.concatenate([concealer.conceal() for _ in range(6)]).astype(np.float64)
    envelope = [np.abs(gap[i:i + 160]).max() for i in range(0, len(gap), 160)]  # per 10 ms
    assert envelope[0] > 0.9 * np.abs(voice[-1]).max()  # the first 10 ms at full level
    assert all(b < a for a, b in zip(envelope[:6], envelope[1:6], strict=False))  # then fading
    assert not gap[3 * FRAME:].any()  # nothing made up after 60 ms: a long gap is silence


def test_silence_for_a_stream_that_stopped_fades_out_within_4_ms() -> None:
    concealer = Concealer(RATE, FRAME)
    last = frames_of(vowel(FRAME * 10))[-1]
    for f in frames_of(vowel(FRAME * 10)):
        concealer.real(f)
    quiet = concealer.silence()
    assert not quiet[JOIN:].any() and not concealer.silence().any()
    assert largest_step(np.concatenate([last, quiet])) <= 1.2 * largest_step(last)


def test_noise_is_concealed_no_louder_than_it_was() -> None:
    rng = np.random.default_rng(3)
    hiss = [rng.integers(-3000, 3000, FRAME).astype(np.int16) for _ in range(10)]
    concealer = Concealer(RATE, FRAME)
    for f in hiss:
        concealer.real(f)
    made_up = concealer.conceal()
    assert np.abs(made_up).max() <= 3000


def test_a_stream_that_starts_with_a_loss_conceals_silence() -> None:
    concealer = Concealer(RATE, FRAME)
    assert not concealer.conceal().any()
    assert not concealer.silence().any()
