"""The caller's level as the recognizer hears it: automatic gain, clipped peaks redrawn."""

from __future__ import annotations

import numpy as np

from ivr.speech.level import CLIP_LEVEL, TARGET_DB, LevelControl, clipped_runs, declip
from ivr.speech.vad import level_db
from tests.support import line_conditions as lc
from tests.support.speech import PhoneLine, frames


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def loud_part_db(speech: bytes) -> float:
    """The level of the loud part of the syllables (what the gain aims at)."""
    levels = [level_db(np.frombuffer(f, dtype="<i2")) for f in frames(speech)]
    return float(np.percentile(levels, 90))


def listen(control: LevelControl, speech: bytes) -> None:
    """Tell the control about every frame of ``speech`` that is clearly voice."""
    for frame in frames(speech):
        level = level_db(np.frombuffer(frame, dtype="<i2"))
        if level > 40.0:
            control.voice(level)


def test_a_line_20_db_down_is_brought_up_to_the_level_of_a_normal_one(phone_line: PhoneLine) -> None:
    speech = np.frombuffer(phone_line.say("민원 접수를 하고 싶습니다"), dtype="<i2").astype(np.float64)
    quiet = pcm(lc.level_db(speech, -20.0))
    control = LevelControl()
    listen(control, quiet)
    assert 14.0 <= control.gain_db <= 24.0
    assert abs(loud_part_db(control.apply(quiet)) - loud_part_db(pcm(speech))) <= 6.0


def test_a_normal_line_reaches_the_recognizer_unchanged(phone_line: PhoneLine) -> None:
    speech = phone_line.say("사람 연결")
    control = LevelControl()
    listen(control, speech)
    assert control.gain_db == 0.0
    assert control.apply(speech) == speech


def test_silence_and_noise_never_raise_the_gain() -> None:
    control = LevelControl()
    hiss = pcm(lc.pink_noise(16000, seed=1, level=30.0))
    assert control.gain_db == 0.0 and control.apply(hiss) == hiss  # nothing heard of the caller yet
    control.voice(TARGET_DB - 15.0)
    held = control.gain_db
    control.apply(hiss)  # the pause between two words: the gain stays where the voice put it
    assert control.gain_db == held == 15.0


def test_clipped_peaks_are_found_and_redrawn_beyond_full_scale() -> None:
    t = np.arange(320) / 16000
    true = 60000.0 * np.sin(2 * np.pi * 200 * t)  # a voice far too loud for the line
    clipped = np.clip(true, -32767, 32767)
    runs = clipped_runs(clipped)
    assert len(runs) == 8  # each of the eight half-periods of 200 Hz in 20 ms has its top cut
    redrawn = declip(clipped, runs)
    inside = slice(runs[1][0], runs[-2][1])  # runs with samples on both sides
    assert np.max(np.abs(redrawn[inside])) > 45000.0
    assert np.mean(np.abs(redrawn[inside] - true[inside])) < 0.5 * np.mean(np.abs(clipped[inside] - true[inside]))


def test_a_clipped_line_is_turned_down_so_its_redrawn_peaks_fit(phone_line: PhoneLine) -> None:
    speech = np.frombuffer(phone_line.say("담당자 바꿔 주세요"), dtype="<i2").astype(np.float64)
    hot = pcm(lc.clipped(speech, 18.0))
    control = LevelControl()
    listen(control, hot)
    heard = np.frombuffer(control.apply(hot), dtype="<i2").astype(np.float64)
    assert control.gain_db < 0.0 and control.clipped_runs > 0
    assert np.mean(np.abs(heard) >= CLIP_LEVEL) < 0.01  # the flat tops are gone
