"""What a real telephone line does to a caller's turn, as signals to add to clean test speech.

Every function works on numpy float64 arrays of int16-scale samples (full scale 32767) at
``rate`` samples per second: 16 kHz by default, what :class:`ivr.speech.engine.SpeechStream`
takes. Nothing is clipped or rounded until :func:`clipped` or the caller's own conversion to
int16, so conditions can be stacked (noise, then a level change, then the line).

All randomness comes from a seed: the same seed gives the same samples on every run, so a
benchmark run can be repeated and two runs diffed turn by turn.

Levels are chosen from telephone practice, not from taste: speech on a line sits around
-20 dBFS (RMS ~3,000), a cough is louder than the voice, a click is short but near full scale.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
PACKET_MS = 20
FULL_SCALE = 32767.0
#: A 20 ms frame counts as "active" speech when it is at most this far below the loudest frame
#: (a simplified ITU-T P.56 active level: pauses and silence around the utterance do not count).
ACTIVE_RANGE_DB = 30.0

#: Korean sentences the babble talkers say: everyday speech, none of them a menu phrase of the
#: ko-KR pack, so babble is a room full of people talking about other things.
BABBLE_SENTENCES = (
    "어제 친구랑 영화를 봤는데 정말 재미있었어",
    "오늘 점심은 김치찌개를 먹을까 생각 중이야",
    "지하철이 너무 붐벼서 한 대를 그냥 보냈어요",
    "주말에 부모님 댁에 다녀오려고 합니다",
    "회의가 길어져서 조금 늦을 것 같아요",
    "이번 달 전기 요금이 생각보다 많이 나왔네",
    "아이가 학교에서 상을 받아 왔어요",
    "비가 올 것 같으니까 우산을 챙기세요",
    "새로 생긴 카페 커피가 꽤 괜찮더라",
    "내일 아침 일찍 공항에 가야 해요",
    "강아지 산책시키고 금방 돌아올게",
    "요즘 운동을 시작해서 몸이 좀 가벼워졌어",
)
#: espeak-ng variants (voice+variant, words per minute, pitch) the babble talkers use.
BABBLE_VOICES = (
    ("ko+m1", 160, 40), ("ko+f1", 170, 60), ("ko+m3", 190, 35), ("ko+f3", 150, 70),
    ("ko+m5", 180, 45), ("ko+f4", 200, 65), ("ko+m7", 140, 30), ("ko+f2", 175, 55),
)


# --- levels ---------------------------------------------------------------------------------


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def active_level(speech: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """RMS of ``speech`` over its active 20 ms frames (those within 30 dB of the loudest).

    Signal-to-noise ratios are stated against this, not against the whole turn's RMS: a turn is
    mostly silence before and after the words, and a ratio that counted the silence would make
    the same noise look milder the longer the caller waited to speak.
    """
    n = rate * PACKET_MS // 1000
    count = len(speech) // n
    if count == 0:
        return rms(speech)
    frames = np.asarray(speech[: count * n], dtype=np.float64).reshape(count, n)
    energy = np.mean(frames * frames, axis=1)
    floor = energy.max() * 10 ** (-ACTIVE_RANGE_DB / 10)
    active = energy[energy >= floor] if energy.max() > 0 else energy
    return float(np.sqrt(np.mean(active)))


def level_db(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` made ``db`` dB louder (negative: quieter), e.g. -20 for a faint mobile or a far
    speakerphone. No clipping: a gain that overflows int16 is :func:`clipped`'s business."""
    return np.asarray(x, dtype=np.float64) * 10 ** (db / 20)


def clipped(x: np.ndarray, gain_db: float) -> np.ndarray:
    """``x`` amplified by ``gain_db`` then hard-clipped at the int16 limits.

    Models a line whose gain is set too high (a headset held against the mouth, an analogue
    adapter turned up): the peaks of the voice flatten against full scale, which adds harsh
    odd harmonics the recognizer never saw in training.
    """
    return np.asarray(np.clip(level_db(x, gain_db), -32768.0, 32767.0), dtype=np.float64)


def clip_fraction(x: np.ndarray) -> float:
    """Share of samples at the int16 limits (how badly a line clips)."""
    return float(np.mean((x >= 32767.0) | (x <= -32768.0))) if len(x) else 0.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``speech`` with ``noise`` added so that active speech level / noise RMS is ``snr_db``.

    The noise runs the whole length of ``speech`` (looped if it is shorter), silence before
    and after the words included: that is what a caller on a noisy street sends while the
    prompt plays, and what a detector must not take for the caller speaking.
    """
    speech = np.asarray(speech, dtype=np.float64)
    if len(speech) == 0:
        return speech.copy()
    noise = np.resize(np.asarray(noise, dtype=np.float64), len(speech))  # loops a short noise
    noise_rms = rms(noise)
    if noise_rms == 0:
        raise ValueError("the noise is silent: no gain gives it a signal-to-noise ratio")
    gain = active_level(speech, rate) / noise_rms * 10 ** (-snr_db / 20)
    return speech + gain * noise


# --- steady and babble noise ---------------------------------------------------------------


def pink_noise(n: int, seed: int, *, level: float = 1000.0) -> np.ndarray:
    """``n`` samples of pink (1/f) noise at RMS ``level``.

    Pink noise has equal energy per octave, like the rumble of traffic, a fan or a busy office
    far away; unlike white noise most of its energy is in the low frequencies where vowels are,
    so it masks speech much more than its RMS suggests. Made by shaping white noise's spectrum
    by 1/sqrt(f) (DC removed).
    """
    if n <= 0:
        return np.zeros(0)
    white = np.random.default_rng(seed).standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = np.inf  # no DC
    pink = np.fft.irfft(spectrum / np.sqrt(f), n=n)
    return pink * (level / max(rms(pink), 1e-12))


def babble(n: int, seed: int, talkers: int = 4, *, rate: int = SAMPLE_RATE, level: float = 1000.0,
           cache: Path | None = None, sentences: tuple[str, ...] = BABBLE_SENTENCES,
           voices: tuple[tuple[str, int, int], ...] = BABBLE_VOICES) -> np.ndarray:
    """``n`` samples of babble: ``talkers`` espeak-ng Korean voices talking at once, at RMS ``level``.

    The hardest noise for a voice detector and a recognizer: it *is* speech, with pitch,
    syllables and Korean phonemes, just not the caller's (a café, a call centre, a TV). Each
    talker says ``sentences`` (Korean :data:`BABBLE_SENTENCES` unless told) in a seeded order in
    one of ``voices`` (espeak-ng voice, wpm, pitch), from a seeded offset, at a seeded level
    within ±3 dB; the talkers are summed. Synthesized speech is cached on disk (``cache``, a
    temporary folder by default).
    """
    if n <= 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    folder = cache or Path(tempfile.gettempdir()) / "hotline-line-conditions"
    folder.mkdir(parents=True, exist_ok=True)
    out = np.zeros(n)
    for _ in range(talkers):
        voice, speed, pitch = voices[int(rng.integers(len(voices)))]
        gap = np.zeros(rate * int(rng.integers(100, 400)) // 1000)  # breath between sentences
        parts: list[np.ndarray] = []
        while sum(len(p) for p in parts) < 2 * n:
            text = sentences[int(rng.integers(len(sentences)))]
            parts += [espeak(text, voice, speed, pitch, rate=rate, cache=folder), gap]
        talk = np.concatenate(parts)
        start = int(rng.integers(0, len(talk) - n + 1))
        talker = talk[start:start + n]
        # Talkers differ in loudness (a talker silent over this stretch adds nothing).
        out += talker / max(rms(talker), 1.0) * 10 ** (rng.uniform(-3, 3) / 20)
    return out * (level / max(rms(out), 1e-12))


def espeak(text: str, voice: str, speed: int, pitch: int, *, rate: int = SAMPLE_RATE,
           cache: Path | None = None) -> np.ndarray:
    """``text`` said by espeak-ng (``voice`` such as ``ko+f2``), resampled by sox to ``rate``.

    Cached on disk by its arguments: the same text and voice always give the same samples.
    """
    folder = cache or Path(tempfile.gettempdir()) / "hotline-line-conditions"
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{voice}|{speed}|{pitch}|{rate}|{text}".encode()).hexdigest()[:24]
    pcm = folder / f"{key}.pcm"
    if not pcm.is_file():
        spoken, resampled = folder / f"{key}.wav", folder / f"{key}.{rate}.wav"
        # Text on stdin: nothing in it can be taken for an option.
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(spoken),
                        "--stdin"], input=text.encode(), check=True, capture_output=True)
        # -R: no dither, so the same text always gives the same samples.
        subprocess.run(["sox", "-R", str(spoken), "-c", "1", "-b", "16", "-e", "signed-integer",
                        str(resampled), "rate", str(rate)], check=True, capture_output=True)
        with wave.open(str(resampled)) as f:
            data = f.readframes(f.getnframes())
        tmp = pcm.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(pcm)  # atomic: parallel callers never read half a file
        spoken.unlink(missing_ok=True)
        resampled.unlink(missing_ok=True)
    return np.frombuffer(pcm.read_bytes(), dtype="<i2").astype(np.float64)


# --- bursts before the caller speaks ---------------------------------------------------------


def _envelope(n: int, attack: int, decay_s: float, rate: int) -> np.ndarray:
    t = np.arange(n)
    rise = np.minimum(1.0, (t + 1) / max(attack, 1))
    return rise * np.exp(-np.maximum(t - attack, 0) / (decay_s * rate))


def _band(x: np.ndarray, low_hz: float, high_hz: float, rate: int) -> np.ndarray:
    """``x`` with everything outside low..high Hz removed (FFT mask: fine for test signals)."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / rate)
    spectrum[(f < low_hz) | (f > high_hz)] = 0
    return np.fft.irfft(spectrum, n=len(x))


def cough(seed: int, *, rate: int = SAMPLE_RATE, peak: float = 16000.0) -> np.ndarray:
    """A cough: a 250-400 ms broadband burst with a sharp attack and a decaying tail, then a
    second, weaker and shorter burst, as most coughs come in pairs.

    A cough is the explosive release of air through a closed glottis: noise across the whole
    band (strongest 300 Hz-3 kHz) that rises within ~5 ms and dies away, with a short voiced
    buzz as the glottis closes again. Louder than the speech that follows (peak ~16,000). To a
    detector that looks at energy and spectral shape it is "speech", and with its buzz it can
    pass a pitch check too; what must not happen is that the turn ends on it.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for strength, (lo_ms, hi_ms) in ((1.0, (250, 400)), (rng.uniform(0.35, 0.6), (120, 200))):
        n = rate * int(rng.integers(lo_ms, hi_ms + 1)) // 1000
        noise = _band(rng.standard_normal(n), 250.0, min(5000.0, rate / 2 - 1), rate)
        noise /= max(rms(noise), 1e-12)
        # Decays over the whole burst (to ~8 %), then a 10 ms fade to nothing.
        fade = np.minimum(1.0, (n - np.arange(n)) / (0.01 * rate))
        burst = noise * _envelope(n, rate * 5 // 1000, n / rate / 2.5, rate) * fade
        # The glottis closing: a brief buzz at 150-300 Hz, well below the noise.
        f0 = rng.uniform(150.0, 300.0)
        t = np.arange(n) / rate
        buzz = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        burst += 0.25 * buzz * _envelope(n, rate * 20 // 1000, 0.05, rate)
        pause = np.zeros(rate * int(rng.integers(60, 140)) // 1000)
        parts += [strength * burst / max(np.max(np.abs(burst)), 1e-12), pause]
    return np.concatenate(parts[:-1]) * peak


def click(*, rate: int = SAMPLE_RATE, peak: float = 20000.0) -> np.ndarray:
    """A click: a ~4 ms train of alternating, decaying impulses, near full scale.

    What a handset makes when it is picked up, a button is pressed near the microphone or a
    line relay switches: very short and very loud, broadband. Detectors that count a few
    loud frames as speech start on it; a recognizer fed it hears a consonant.
    """
    n = rate * 4 // 1000
    out = np.zeros(n)
    step = max(1, rate // 2000)  # an impulse every 0.5 ms
    for i, at in enumerate(range(0, n, step)):
        out[at] = peak * (-0.6) ** i
    return out


# --- out-of-grammar sounds that are not speech ----------------------------------------------


def music(ms: int, seed: int, *, rate: int = SAMPLE_RATE, level: float = 3000.0) -> np.ndarray:
    """``ms`` of a melody: harmonic notes (a pentatonic tune, 150-400 ms each) with vibrato.

    Hold music, a radio, a phone's ringtone in the room. Each note is a fundamental of
    200-800 Hz with harmonics falling as 1/k, a 5-6 Hz vibrato of ±1.5 % and an attack-decay
    envelope: it is periodic like a voice, so it passes a pitch check, which is exactly why
    it must be tested. RMS ``level``.
    """
    rng = np.random.default_rng(seed)
    total = rate * ms // 1000
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21]) / 12)  # A3 pentatonic
    notes: list[np.ndarray] = []
    while sum(len(x) for x in notes) < total:
        n = rate * int(rng.integers(150, 401)) // 1000
        t = np.arange(n) / rate
        f0 = scale[int(rng.integers(len(scale)))]
        vibrato = 1 + 0.015 * np.sin(2 * np.pi * rng.uniform(5, 6) * t)
        phase = 2 * np.pi * np.cumsum(f0 * vibrato) / rate
        tone = sum(np.sin(k * phase) / k for k in range(1, 9) if k * f0 < rate / 2)
        env = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.5)
        notes.append(tone * env)
    out = np.concatenate(notes)[:total]
    return out * (level / max(rms(out), 1e-12))


def hum(ms: int, pitch_hz: float, *, rate: int = SAMPLE_RATE, level: float = 3000.0, seed: int = 0) -> np.ndarray:
    """``ms`` of a closed-mouth hum ("mmm") at ``pitch_hz``.

    A voice without words: a glottal-pulse-like source (harmonics falling 12 dB an octave)
    through a nasal resonance around 250 Hz, with the small pitch drift (±2 %, slow) and
    vibrato of a real voice. It has a pitch and a voice's spectrum, so only the recognizer
    can tell it is no word; a caller humming along to hold music must not choose a menu item.
    RMS ``level``.
    """
    rng = np.random.default_rng(seed)
    n = rate * ms // 1000
    t = np.arange(n) / rate
    drift = 1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 2 * np.pi))
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4.5, 6) * t)
    phase = 2 * np.pi * np.cumsum(pitch_hz * drift * vibrato) / rate
    out = np.zeros(n)
    for k in range(1, 40):
        f = k * pitch_hz
        if f >= rate / 2 - 200:
            break
        nasal = 1 / (1 + ((f - 250) / 150) ** 2) + 0.1  # the murmur's low resonance, and the rest
        out += np.sin(k * phase) / k**2 * nasal
    out *= np.minimum(1.0, t / 0.03) * np.minimum(1.0, (n - 1 - np.arange(n)) / (0.05 * rate))  # no click in or out
    return out * (level / max(rms(out), 1e-12))


# --- packets --------------------------------------------------------------------------------


def lose_packets(frames: int, loss: float, seed: int) -> frozenset[int]:
    """Which of ``frames`` 20 ms RTP packets a line loses, each with probability ``loss``.

    Independent losses (a congested mobile or Wi-Fi hop at a few per cent): mostly single
    packets, now and then two in a row, which is what a jitter buffer's concealment is built
    for. Returns the packet indexes to leave out.
    """
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss is a probability 0..1, got {loss}")
    drawn = np.random.default_rng(seed).random(frames) < loss
    return frozenset(int(i) for i in np.flatnonzero(drawn))
