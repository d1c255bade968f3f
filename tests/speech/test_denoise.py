"""The noise reducer: steady noise turned down in what the recognizer hears, the voice kept."""

from __future__ import annotations

import numpy as np

from ivr.speech.denoise import FLOOR_DB, HOP, NoiseReducer
from ivr.speech.vad import FRAME_BYTES, level_db
from tests.support import line_conditions as lc
from tests.support.speech import PhoneLine, frames

SAMPLES = FRAME_BYTES // 2


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def signal(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def through(reducer: NoiseReducer, x: np.ndarray, batch_frames: int = 5) -> np.ndarray:
    """``x`` through the reducer in batches as the stream sends them, then flushed."""
    data = pcm(x)
    step = batch_frames * FRAME_BYTES
    out = b"".join(reducer.apply(data[i:i + step]) for i in range(0, len(data), step)) + reducer.flush()
    return signal(out)


def learnt_on(noise: np.ndarray) -> NoiseReducer:
    reducer = NoiseReducer()
    for frame in frames(pcm(noise)):
        reducer.learn(signal(frame), level_db(signal(frame)))
    return reducer


def test_a_quiet_line_reaches_the_recognizer_unchanged() -> None:
    hiss = np.random.default_rng(1).standard_normal(16000) * 10  # 20 dB: a clean line's floor
    reducer = learnt_on(hiss)
    speech = pcm(np.random.default_rng(2).standard_normal(8000) * 3000)
    assert not reducer.active
    assert reducer.apply(speech) == speech and reducer.flush() == b""


def test_steady_noise_alone_is_turned_down_by_the_floor_and_no_more(phone_line: PhoneLine) -> None:
    noise = signal(phone_line.carry(lc.pink_noise(16000 * 2, seed=3)))  # 60 dB: a loud fan
    reducer = learnt_on(noise[:16000])
    out = through(reducer, noise[16000:])
    assert reducer.active
    # Well down, but never below the floor: bands are turned down, not cut out (which leaves
    # "musical" tones behind, heard as words).
    drop = level_db(noise[16000 + HOP:]) - level_db(out[HOP:16000 - HOP])
    assert 6.0 <= drop <= -FLOOR_DB + 0.5


def test_a_voice_over_the_noise_keeps_its_level_and_gains_on_the_noise(phone_line: PhoneLine) -> None:
    voice = signal(phone_line.say("민원 접수를 하고 싶습니다"))
    room = lc.pink_noise(len(voice) + 16000, seed=3)
    clean = np.concatenate([np.zeros(16000), voice])
    noisy = signal(phone_line.carry(lc.mix_at_snr(clean, room, 15.0)))
    reducer = learnt_on(noisy[:16000])
    out = through(reducer, noisy[16000:])[:len(voice)]
    # Frame by frame: the voice's loud frames keep their level, the pauses between its words
    # (the noise alone) go down: the voice stands further above the noise than it did.
    levels = np.array([level_db(f) for f in voice[:len(voice) // SAMPLES * SAMPLES].reshape(-1, SAMPLES)])
    loud, pause = levels >= np.percentile(levels, 75), levels <= np.percentile(levels, 25)

    def by_frame(x: np.ndarray) -> np.ndarray:
        return np.array([level_db(f) for f in x[:len(levels) * SAMPLES].reshape(-1, SAMPLES)])

    heard, filtered = by_frame(noisy[16000:]), by_frame(out)
    assert np.mean(filtered[loud] - heard[loud]) > -2.0
    assert np.mean(heard[loud]) - np.mean(heard[pause]) + 6.0 <= np.mean(filtered[loud]) - np.mean(filtered[pause])


def test_the_filter_adds_up_to_its_input_where_nothing_is_turned_down() -> None:
    x = np.random.default_rng(4).standard_normal(16000) * 1000
    reducer = NoiseReducer()
    reducer.learn(np.zeros(SAMPLES), 50.0)  # a noisy line whose noise has no power: every band passes
    out = through(reducer, x)
    assert len(out) == len(x) + HOP
    assert np.abs(out[HOP:len(x) - HOP] - np.rint(x[HOP:len(x) - HOP])).max() <= 1.0
