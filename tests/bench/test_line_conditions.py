"""The line conditions the noisy-set benchmark applies (tests/support/line_conditions.py) do what
their names say, in numbers: the asked SNR, the asked loss rate, the same samples for the same seed."""

from __future__ import annotations

import numpy as np

from tests.support import line_conditions as lc

RATE = lc.SAMPLE_RATE


def _speech_like(seconds: float = 1.0, lead: float = 0.6, tail: float = 1.0) -> np.ndarray:
    """Silence, a vowel-like harmonic sound with a syllable rhythm, silence (as a turn is)."""
    t = np.arange(int(RATE * seconds)) / RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return np.concatenate([np.zeros(int(RATE * lead)), 3000 * voice, np.zeros(int(RATE * tail))])


def _snr(speech: np.ndarray, mixed: np.ndarray) -> float:
    """Measured independently: speech power over its own loud frames vs the added noise's power."""
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320)
    energy = (frames**2).mean(axis=1)
    active = energy[energy > 0]
    noise = mixed - speech
    return float(10 * np.log10(active.mean() / (noise**2).mean()))


def test_pink_noise_is_mixed_at_the_asked_snr_against_the_active_speech_level() -> None:
    speech = _speech_like()
    for snr in (15.0, 5.0, 0.0):
        mixed = lc.mix_at_snr(speech, lc.pink_noise(len(speech), seed=3), snr)
        assert abs(_snr(speech, mixed) - snr) < 0.5


def test_babble_is_mixed_at_the_asked_snr_and_is_louder_in_the_silence_than_none() -> None:
    speech = _speech_like()
    noise = lc.babble(len(speech), seed=5, talkers=4)
    mixed = lc.mix_at_snr(speech, noise, 5.0)
    assert abs(_snr(speech, mixed) - 5.0) < 0.5
    lead = mixed[: int(RATE * 0.5)]
    assert lc.rms(lead) > 300  # the noise runs before the caller speaks: that is the test


def test_silence_around_the_words_does_not_change_the_active_level() -> None:
    short = _speech_like(lead=0.1, tail=0.1)
    long = _speech_like(lead=2.0, tail=3.0)
    assert abs(20 * np.log10(lc.active_level(short) / lc.active_level(long))) < 0.1


def test_a_noise_shorter_than_the_turn_is_looped_over_all_of_it() -> None:
    speech = _speech_like()
    mixed = lc.mix_at_snr(speech, lc.pink_noise(RATE // 2, seed=1), 10.0)
    assert len(mixed) == len(speech)
    assert lc.rms(mixed[-RATE // 2:]) > 0


def test_pink_noise_has_equal_energy_per_octave() -> None:
    x = lc.pink_noise(RATE * 4, seed=2)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    octave = [power[(f >= lo) & (f < 2 * lo)].sum() for lo in (250, 500, 1000, 2000)]
    assert max(octave) / min(octave) < 1.5  # white noise would double each octave


def test_the_same_seed_gives_the_same_samples_and_another_seed_others() -> None:
    assert np.array_equal(lc.pink_noise(1000, 7), lc.pink_noise(1000, 7))
    assert not np.array_equal(lc.pink_noise(1000, 7), lc.pink_noise(1000, 8))
    assert np.array_equal(lc.babble(4000, 7), lc.babble(4000, 7))
    assert np.array_equal(lc.cough(7), lc.cough(7))
    assert not np.array_equal(lc.cough(7), lc.cough(8))
    assert np.array_equal(lc.music(500, 7), lc.music(500, 7))
    assert lc.lose_packets(500, 0.1, 7) == lc.lose_packets(500, 0.1, 7)
    assert lc.lose_packets(500, 0.1, 7) != lc.lose_packets(500, 0.1, 8)


def test_a_cough_is_two_bursts_the_first_louder_with_a_sharp_attack() -> None:
    for seed in range(5):
        x = lc.cough(seed)
        envelope = np.sqrt((x[: len(x) // 80 * 80].reshape(-1, 80) ** 2).mean(axis=1))  # 5 ms steps
        loud = envelope > envelope.max() * 0.03
        bursts = np.flatnonzero(np.diff(loud.astype(int)) == 1).size + int(loud[0])
        assert bursts == 2
        first_end = np.flatnonzero(~loud)[0]
        assert 0.25 <= first_end * 0.005 <= 0.45  # the first burst lasts 250-400 ms
        assert np.argmax(envelope) <= 2  # at its loudest within 15 ms of starting
        assert envelope[first_end:].max() < envelope.max()


def test_a_click_is_a_few_milliseconds_long_and_near_full_scale() -> None:
    x = lc.click()
    assert len(x) / RATE * 1000 <= 5
    assert np.abs(x).max() >= 16000


def test_music_and_hum_are_periodic_at_their_pitch() -> None:
    x = lc.hum(1000, 150.0)
    lag = RATE // 150
    a, b = x[RATE // 4: RATE // 4 + 640], x[RATE // 4 + lag: RATE // 4 + lag + 640]
    assert np.corrcoef(a, b)[0, 1] > 0.9
    melody = lc.music(2000, seed=4)
    assert abs(lc.rms(melody) - 3000) < 1
    assert len(melody) == 2 * RATE


def test_a_quieter_line_is_that_many_db_down() -> None:
    x = _speech_like()
    assert abs(20 * np.log10(lc.rms(lc.level_db(x, -20)) / lc.rms(x)) + 20) < 1e-9


def test_a_clipped_line_flattens_the_peaks_at_int16_full_scale() -> None:
    x = _speech_like()  # peaks ~ 3000 * 2.6
    assert lc.clip_fraction(lc.clipped(x, 0.0)) == 0.0
    hot = lc.clipped(x, 20.0)
    assert hot.max() == 32767.0 and hot.min() == -32768.0
    voiced = hot[int(RATE * 0.6): int(RATE * 1.6)]
    assert 0.02 < lc.clip_fraction(voiced) < lc.clip_fraction(lc.clipped(x, 30.0)[int(RATE * 0.6): int(RATE * 1.6)])


def test_packets_are_lost_at_the_asked_rate() -> None:
    lost = lc.lose_packets(100_000, 0.03, seed=1)
    assert abs(len(lost) / 100_000 - 0.03) < 0.002
    assert all(0 <= i < 100_000 for i in lost)
    assert lc.lose_packets(1000, 0.0, seed=1) == frozenset()
