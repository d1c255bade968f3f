"""Start and end of a caller's utterance on 20 ms frames: a voice, not the room.

A phone line carries more than the caller: steady noise (a car, a fan), other people talking
(babble), a cough, a click, music. webrtcvad alone took all of those for a voice (issue 16:
the prompt cut off and the turn run to its cap in every turn with noise at 5 dB SNR), so an
utterance now starts only where two things agree:

- the neural voice model (:mod:`ivr.speech.neural`, Silero) says a voice, probability >= 0.5:
  it is near 0 on steady noise, coughs, clicks and music, near 1 on speech even 30 dB down;
- the frame is clearly louder than the line's background (an adaptive noise floor, >= 9 dB,
  more where the background itself varies): babble *is* speech to the model, but the caller,
  close to the microphone, is louder than the voices behind them. The floor follows the line
  quickly down and slowly up (about a second), so it settles on the steady part of the noise
  and not on the caller's syllables, and it is held while an utterance runs. How far the
  background's frames stray from it is learnt too: babble's loud moments come 10-14 dB above
  its floor, so on such a line the margin grows by 2 dB per dB of spread.

The first 300 ms learn the line, and nothing starts in them; the floor follows every frame
then (held while a voice might be starting, as later, it stayed in a lull of babble, whose
next loud moment started an utterance before the caller spoke: 4 to 6 turns of 60 at 5 dB
SNR). Where most of them are a voice (babble, or a caller already talking: they look alike
that early), how far they stray counts as the spread too. Babble then keeps its level; a
caller stops, and the background falls well below what was learnt: the first seconds are
judged again against it, and the caller's utterance starts where it began (late, but heard).

Four such frames among six (80 ms of voice) *start* an utterance: the recognizer gets its
audio from there (with a pre-roll). Eight (160 ms) *confirm* it if its level rose and fell by
8 dB or more as syllables do (a hum or a held note keeps one level, and the model calls a
hum a voice), or the recognizer's own partial words do (:meth:`EndpointDetector.word_heard`):
only then is the prompt stopped (barge-in), so a cough or a burst does not cut it off. An
utterance that ends unconfirmed and wordless is a burst: the stream resets the detector
(:meth:`EndpointDetector.listen_again`) and listens on.

The end: ``end_silence_ms`` of frames without a voice. We decide end of speech ourselves
instead of waiting for Vosk's endpointer (about a second of trailing silence in the small
models): the product target is a decision within 400 ms (p95) of the caller stopping. On a
quiet line webrtcvad still counts too, for at most 60 ms after the voice model last heard a
voice: that spans a pause of up to ~260 ms inside a phrase ("담당자 ... 바꿔 주세요"), and with
the default 200 ms the end is said about 260 ms after the voice (Vosk's final result takes
20-40 ms more). webrtcvad alone held it longer: its hang-over grew to 180 ms on a loud,
clipped line, and it took any noise after the last word (a door, a passing car) for a voice
for as long as the noise lasted. On a noisy line webrtcvad calls the noise voice, so there
only the voice model and the level count: the last 100 ms must stand above the floor by half
the caller's loudest (babble that goes on after the caller averages a few dB above it),
with a hang-over of our own (60 ms), the same. Once started, an utterance in which the
recognizer has heard no word for ``no_word_timeout_s`` ends (noise that passed both checks
cannot keep a menu waiting), and ``max_utterance_s`` stays as the last guard.
"""

from __future__ import annotations

import math

import numpy as np
import webrtcvad

from ivr.speech.codec import FilledSilence
from ivr.speech.neural import VoiceModel

SAMPLE_RATE = 16_000
FRAME_MS = 20
#: One frame of 16-bit little-endian mono PCM at 16 kHz.
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2

STARTED = "speech_started"
CONFIRMED = "speech_confirmed"
ENDED = "speech_ended"

#: Voice-model probability that starts (or confirms) a voice, and that keeps one going.
VOICE_ON = 0.5
VOICE_KEEP = 0.35
#: Level above the background (dB) a frame needs to start a voice, and to keep one going.
START_MARGIN_DB = 9.0
KEEP_MARGIN_DB = 6.0
#: On a noisy line an utterance goes on while the level of its last ``KEEP_FRAMES`` frames
#: stands above the floor by this share of the caller's loudest (in dB), and the keep margin.
KEEP_FRAMES = 5
KEEP_SHARE = 0.5
#: Below this background (dB re one 16-bit step, RMS 100) the line counts as quiet and
#: webrtcvad's voiced frames keep an utterance going (its hang-over spans short pauses).
QUIET_BACKGROUND_DB = 40.0
#: How fast the background follows a frame that is quieter / louder than it (per frame).
BACKGROUND_DOWN = 0.25
BACKGROUND_UP = 0.05
#: Nothing starts in a stream's first frames (300 ms): the background, its spread and the
#: voice model are still learning the line (a caller already talking is backdated to).
LEARN_FRAMES = 15
#: Where most of the learning frames are a voice (babble, or a caller already talking), how
#: far their levels stray counts as the line's spread, up to this (dB): babble's loud moments
#: then need 17 dB above the floor (a floor learnt in 300 ms of babble sits in its lulls).
LEARNT_SPREAD_CAP = 6.0
#: A stream's first frames are kept (level, voice probability) this long (3 s): a caller who
#: spoke from the first frames taught the floor their voice (see ``_rejudge``).
RETRO_FRAMES = 150
#: A floor learnt from a voice shows itself when the background falls this far (dB) below it
#: and stays there this many frames (200 ms): the caller has stopped.
REVEAL_DB = 4.0
REVEAL_FRAMES = 10
#: Frames before a start found afterwards that the recognizer also gets (100 ms).
RETRO_PREROLL_FRAMES = 5
#: Frames after the voice model's last voice that still count as the voice: the pauses
#: inside a phrase. On a noisy line by our own rule, on a quiet one as long as webrtcvad
#: says voiced. 60 ms rather than webrtcvad's own 100-180: in the noisy set (2026-12-07) the
#: decision's p95 came 5-55 ms sooner on every line but one (3 % loss, 2 ms later), no phrase
#: was cut in two and no condition's correct share fell beyond Vosk's dither.
HANG_OVER_FRAMES = 3
#: How far the background's frames stray from it (dB, mean) is learnt this fast; past
#: ``SPREAD_ALLOWED`` each dB of it raises both margins by ``SPREAD_WEIGHT`` dB. Hiss strays
#: 0.4 dB, pink noise 1.9, babble 3.4-5.6: babble's loud moments reach 10-14 dB above the
#: floor, and only a caller clearly louder than those is taken for the caller.
SPREAD_RATE = 0.1
SPREAD_ALLOWED = 2.0
SPREAD_WEIGHT = 2.0
#: How many frames before a start may still count as its beginning (the voice model's
#: window is 32 ms and it needs a window or two to be sure).
BACKDATE_FRAMES = 3
#: Frames of the start window that may be no voice: a short syllable ("이") gives the model
#: four or five sure frames with a dip among them.
START_SLACK = 2
#: A voice whose level stays within this (dB) is steady: a hum, a held note, a tone. Speech
#: rises and falls by 12 dB or more within its first 200 ms (consonants, vowels, syllables);
#: a hum on one breath varied by under 1 dB in our measurements.
STEADY_DB = 6.0
#: A voice confirms itself once its level rose and fell by this much (speech: 12 dB or more
#: within 200 ms; babble's own ups and downs confirmed it before the caller spoke at 6).
SYLLABLES_DB = 8.0
#: Voice frames needed before a voice can be called steady (a single short syllable can be).
STEADY_FRAMES = 8


def level_db(samples: np.ndarray) -> float:
    """Loudness of a frame in dB re one 16-bit step (0 for digital silence)."""
    x = samples.astype(np.float64)
    return float(10.0 * np.log10(np.mean(x * x) + 1.0))


class EndpointDetector:
    """Feed 20 ms frames; says ``speech_started``, ``speech_confirmed``, ``speech_ended``.

    Each at most once per utterance; after ``speech_ended`` it says nothing more until
    :meth:`listen_again`. ``end_reason`` says why it ended: "silence", "no_word" or "cap".
    """

    def __init__(
        self,
        voice: VoiceModel | None = None,
        *,
        aggressiveness: int = 2,
        start_frames: int = 4,
        confirm_frames: int = 8,
        end_silence_ms: int = 200,
        no_word_timeout_s: float = 3.0,
        max_utterance_s: float = 10.0,
    ) -> None:
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"webrtcvad aggressiveness is 0..3, got {aggressiveness}")
        if start_frames < 1 or confirm_frames < start_frames:
            raise ValueError("start_frames >= 1 and confirm_frames >= start_frames are required")
        if end_silence_ms < FRAME_MS or max_utterance_s <= 0 or no_word_timeout_s <= 0:
            raise ValueError(
                "end_silence_ms >= 20, no_word_timeout_s > 0 and max_utterance_s > 0 are required"
            )
        self._voice = voice if voice is not None else VoiceModel()
        self._aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self._start_frames = start_frames
        self._confirm_frames = confirm_frames
        self._end_frames = -(-end_silence_ms // FRAME_MS)  # ceiling: at least the asked silence
        self._no_word_frames = int(no_word_timeout_s * 1000 // FRAME_MS)
        self._max_frames = int(max_utterance_s * 1000 // FRAME_MS)
        self.frames = 0
        #: The line's background level (dB), None before the first frame.
        self.background: float | None = None
        #: How far the background's frames stray from it (dB): wide for babble.
        self.spread = 0.0
        self._last_levels: list[float] = []
        #: The last frame's level (dB) and whether it was a voice (model and level agree).
        self.level = 0.0
        self.voice = False
        self._recent_levels: list[float] = []
        #: (level, voice probability) of the stream's first frames (index = frame), until
        #: anything starts or they are judged again; then None.
        self._heard: list[tuple[float, float]] | None = []
        self._learnt_floor: float | None = None
        self._learnt_on_voice = False
        #: Frames of the line heard so far, for the learning (silence filled in is not the line).
        self._line_frames = 0
        self._revealing = 0
        self.listen_again()

    def listen_again(self) -> None:
        """Wait for a new utterance (after a burst): the background and model carry on."""
        #: Index of the first frame of the utterance, once started.
        self.start_frame: int | None = None
        self.confirmed = False
        self.ended = False
        self.end_reason: str | None = None
        self._recent_voice: list[bool] = []
        self._voice_frames = 0
        self._loudest = -1.0
        self._quietest = 1e9
        self._silent_run = 0
        self._last_word: int | None = None
        #: The last frame the voice model called a voice (webrtcvad counts only near it).
        self._last_model_voice = -1
        #: An utterance found afterwards that was over when found (see ``_rejudge``).
        self._over = False

    @property
    def started(self) -> bool:
        return self.start_frame is not None

    @property
    def steady(self) -> bool:
        """Whether the voice kept one level long enough to tell: a hum, never speech."""
        return self._voice_frames >= STEADY_FRAMES and self._loudest - self._quietest < STEADY_DB

    @property
    def above_background_db(self) -> float | None:
        """How far the utterance's loudest voiced frame stood above the line's background
        (dB), None before a voice: 70 dB and more on a clean line, 20-30 with noise at 15 dB SNR."""
        if self.start_frame is None or self.background is None:
            return None
        return self._loudest - self.background

    @property
    def _rises_and_falls(self) -> bool:
        return self._loudest - self._quietest >= SYLLABLES_DB

    def word_heard(self) -> bool:
        """The recognizer heard a word: confirms the utterance. True if that confirmed it."""
        if self.start_frame is None or self.ended:
            return False
        self._last_word = self.frames - 1
        if self.confirmed:
            return False
        self.confirmed = True
        return True

    def push(self, frame: bytes) -> str | None:
        """One 20 ms frame (640 bytes); None or one of the three events. A
        :class:`~ivr.speech.codec.FilledSilence` frame (RTP that was late or stopped) is quiet,
        and no sound of the line: it ends a voice, but never moves the floor or teaches it."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(
                f"a frame is {FRAME_BYTES} bytes (20 ms of 16 kHz 16-bit PCM), got {len(frame)}"
            )
        index = self.frames
        self.frames += 1
        samples = np.frombuffer(frame, dtype="<i2")
        level = level_db(samples)
        self._last_levels = [*self._last_levels[1 - KEEP_FRAMES:], level]
        probability = self._voice.push(samples)
        # webrtcvad adapts to the line as it goes: it hears every frame, used or not.
        voiced = self._vad.is_speech(frame, SAMPLE_RATE)
        if self.ended:
            return None
        filled = isinstance(frame, FilledSilence)
        background = level if self.background is None else self.background
        above = level - background
        raised = _raised(self.spread)
        voice = not filled and probability >= VOICE_ON and above >= START_MARGIN_DB + raised
        self.level, self.voice = level, voice
        if self.start_frame is None:
            if self._heard is not None and index < RETRO_FRAMES:
                self._heard.append((math.nan, 0.0) if filled else (level, probability))
            return self._before_start(index, level, background, voice, filled) or self._rejudge(index)
        if level < background and probability < VOICE_KEEP and not filled:
            # A pause shows the line's floor (a caller who spoke from the first frame set it
            # too high); the caller never raises it, and babble's dips are no pause.
            self.background = background + BACKGROUND_DOWN * (level - background)
        # The caller goes on while the last 100 ms stay nearer their voice than the floor:
        # babble that goes on after them averages a few dB above the floor.
        recent = 10.0 * np.log10(np.mean(10.0 ** (np.asarray(self._last_levels) / 10.0)))
        needed = max(KEEP_MARGIN_DB + raised, (self._loudest - background) * KEEP_SHARE)
        going = probability >= VOICE_KEEP and recent - background >= needed
        if probability >= VOICE_KEEP:
            self._last_model_voice = index
        return self._during(index, level, going, background, voice, voiced)

    def _before_start(self, index: int, level: float, background: float, voice: bool,
                      filled: bool) -> str | None:
        window = self._start_frames + START_SLACK
        self._recent_levels = [*self._recent_levels[1 - window - BACKDATE_FRAMES:], level]
        self._recent_voice = [*self._recent_voice[1 - window:], voice]
        if filled:
            return None  # silence made up: no voice, and nothing of the line to learn
        learning = self._line_frames < LEARN_FRAMES
        self._line_frames += 1
        # The background is held while a voice may be starting, but not while it is learnt:
        # babble is a voice, and a floor held from a lull in it let its next loud moment in.
        if learning or not any(self._recent_voice):
            rate = BACKGROUND_DOWN if level < background else BACKGROUND_UP
            self.background = background + rate * (level - background)
            if level < background + START_MARGIN_DB:  # not babble's loud moments, nor a caller's
                self.spread += SPREAD_RATE * (abs(level - background) - self.spread)
        if self._line_frames == LEARN_FRAMES:
            self._learnt()
        if not voice or sum(self._recent_voice) < self._start_frames or learning:
            return None
        self._heard = None  # a start: the first frames are no longer needed
        back = len(self._recent_voice) - self._recent_voice.index(True)  # frames since the first voice
        first = index - back + 1
        levels = self._recent_levels[:-back]
        for quieter in levels[::-1][:BACKDATE_FRAMES]:  # the voice began before the model was sure
            if quieter < background + START_MARGIN_DB:
                break
            first -= 1
        self.start_frame = max(0, first)
        self._last_model_voice = index
        # webrtcvad's hang-over after a voice grows after loud noise (a cough before the
        # caller held it ~100 ms longer): it judges the utterance from a fresh start.
        self._vad = webrtcvad.Vad(self._aggressiveness)
        self._voice_frames = sum(self._recent_voice)
        voiced = [lv for lv, v in zip(self._recent_levels[-back:], self._recent_voice[-back:], strict=True) if v]
        self._loudest, self._quietest = max(voiced), min(voiced)
        return STARTED

    def _learnt(self) -> None:
        """The end of the learning frames: where most were a voice, their spread counts."""
        heard = self._heard or []  # made-up silence in it: no voice, and no level (_stray)
        self._learnt_floor = self.background
        self._learnt_on_voice = 2 * sum(p >= VOICE_ON for _, p in heard) >= LEARN_FRAMES
        if self._learnt_on_voice:
            self.spread = max(self.spread, min(LEARNT_SPREAD_CAP, _stray(heard)))

    def _rejudge(self, index: int) -> str | None:
        """A caller who spoke from the stream's first frames taught the floor (and the spread)
        their voice, and was not heard against it: in 300 ms they and babble look alike, and
        a floor learnt from babble must hold. The difference comes later: the caller stops and
        the background falls well below the learnt floor. The stream's first frames are then
        judged again against the floor and spread that pause shows, once, and an utterance
        found there starts now, where it began (its audio goes to the recognizer:
        ``SpeechStream._before``); it is over, so its end follows at once."""
        floor, background, heard = self._learnt_floor, self.background, self._heard
        if heard is None or floor is None or background is None or not self._learnt_on_voice:
            return None
        self._revealing = self._revealing + 1 if background < floor - REVEAL_DB else 0
        if self._revealing < REVEAL_FRAMES:
            if index >= RETRO_FRAMES - 1:
                self._heard = None  # no pause in the first seconds: a floor learnt from the line
            return None
        self._heard = None  # judged once
        spread = _stray(heard[-REVEAL_FRAMES:])
        margin = START_MARGIN_DB + _raised(spread)
        voice = [p >= VOICE_ON and lv >= background + margin for lv, p in heard]
        first = _first_run(voice, self._start_frames, self._start_frames + START_SLACK)
        if first is None:
            return None
        for _ in range(BACKDATE_FRAMES):  # as at a start: the voice began before the model was sure
            # Made-up silence (its level NaN, which no comparison holds for) is no voice either.
            if first == 0 or not heard[first - 1][0] >= background + START_MARGIN_DB:
                break
            first -= 1
        voiced = [lv for (lv, _), v in zip(heard[first:], voice[first:], strict=True) if v]
        last_voice = max(i for i, v in enumerate(voice) if v)
        # How the voice rose and fell: over every frame of the span the voice model heard, not
        # only those that stood out against the floor (a caller at 5 dB SNR stands out by their
        # loudest syllables only, and those alone look like a hum's one level).
        span = [lv for lv, p in heard[first:last_voice + 1] if p >= VOICE_KEEP]
        self.start_frame = first
        self.spread = spread
        self._voice_frames = len(voiced)
        self._loudest, self._quietest = max(voiced), min([*voiced, *span])
        self._last_model_voice = max(i for i, (_, p) in enumerate(heard) if p >= VOICE_KEEP or i == first)
        self._silent_run = index - self._last_model_voice
        # What showed the floor is the caller's silence: where their voice, judged against it,
        # ended long enough ago, the utterance is over and ends at the next frame (babble's
        # voices would hold it open until their next lull: 0.5-1 s more at 5 dB SNR).
        self._over = index - last_voice >= self._end_frames + HANG_OVER_FRAMES
        self._vad = webrtcvad.Vad(self._aggressiveness)
        return STARTED

    def _during(self, index: int, level: float, going: bool, background: float,
                voice: bool, voiced: bool) -> str | None:
        assert self.start_frame is not None
        if self._over:
            return self._end("silence")
        if voice:
            self._voice_frames += 1
            self._loudest, self._quietest = max(self._loudest, level), min(self._quietest, level)
        quiet_line = background < QUIET_BACKGROUND_DB
        if not going and quiet_line:
            going = voiced and index - self._last_model_voice <= HANG_OVER_FRAMES
        self._silent_run = 0 if going else self._silent_run + 1
        since_word = index - (self._last_word if self._last_word is not None else self.start_frame)
        # webrtcvad's hang-over spans the pauses between syllables on a quiet line; on a
        # noisy one ours does, as long.
        hang_over = 0 if quiet_line else HANG_OVER_FRAMES
        if self._silent_run >= self._end_frames + hang_over:
            return self._end("silence")
        if since_word >= self._no_word_frames:
            return self._end("no_word")
        if index - self.start_frame + 1 >= self._max_frames:
            return self._end("cap")
        if not self.confirmed and self._voice_frames >= self._confirm_frames and self._rises_and_falls:
            self.confirmed = True
            return CONFIRMED
        return None

    def _end(self, reason: str) -> str:
        self.ended = True
        self.end_reason = reason
        return ENDED


def _raised(spread: float) -> float:
    """How much a line's spread (dB) raises the margins: by SPREAD_WEIGHT per dB past SPREAD_ALLOWED."""
    return SPREAD_WEIGHT * max(0.0, spread - SPREAD_ALLOWED)


def _stray(heard: list[tuple[float, float]]) -> float:
    """How far these frames' levels stray from their mean (dB, mean absolute deviation)."""
    levels = np.asarray([level for level, _ in heard if not math.isnan(level)])
    return float(np.mean(np.abs(levels - levels.mean()))) if levels.size else 0.0


def _first_run(voice: list[bool], needed: int, window: int) -> int | None:
    """Index of the first voice of the first ``window`` frames holding ``needed`` voices."""
    for end in range(len(voice)):
        span = voice[max(0, end - window + 1):end + 1]
        if voice[end] and sum(span) >= needed:
            return end - len(span) + 1 + span.index(True)
    return None


# --- pitch: is there a voice at all? ------------------------------------------------------
#
# webrtcvad judges energy and spectral shape, so loud hiss (wind, a rubbing microphone)
# starts an utterance like a voice does; and Vosk with a grammar turns hiss into menu
# phrases. A voice has a pitch: in a vowel, the waveform repeats every 2.5-12.5 ms
# (80-400 Hz). Hiss never does, so counting frames that repeat tells the two apart.

_PITCH_LAGS = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 80 + 1)  # 40..200 samples
_FRAME_SAMPLES = FRAME_BYTES // 2
#: Normalised autocorrelation a frame must reach at some pitch period to count as pitched.
PITCH_CORRELATION = 0.5
#: Frames quieter than this (RMS) are not judged: too little signal to tell.
PITCH_MIN_RMS = 100.0


def pitched_frames(audio: bytes) -> int:
    """How many whole 20 ms frames of ``audio`` (16 kHz LE PCM) carry a pitch.

    Phone-line speech had at least 8 such frames per menu phrase in our measurements
    (typically 12+); white and pink noise and clicks had at most 1.
    """
    count = len(audio) // FRAME_BYTES
    if count == 0:
        return 0
    x = np.frombuffer(audio[: count * FRAME_BYTES], dtype="<i2").astype(np.float64)
    x = x.reshape(count, _FRAME_SAMPLES)
    x -= x.mean(axis=1, keepdims=True)
    # Correlation of each frame with itself shifted by every pitch period, by FFT (zero
    # padded to avoid wrap-around), normalised by the energy of the overlapping parts.
    spectrum = np.fft.rfft(x, n=2 * _FRAME_SAMPLES, axis=1)
    shifted = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, _PITCH_LAGS]
    energy = np.cumsum(x * x, axis=1)
    total = energy[:, -1:]
    head = energy[:, _FRAME_SAMPLES - _PITCH_LAGS - 1]  # samples 0 .. N-lag-1
    tail = total - energy[:, _PITCH_LAGS - 1]  # samples lag .. N-1
    correlation = shifted / np.sqrt(head * tail + 1e-9)
    loud = np.sqrt(total[:, 0] / _FRAME_SAMPLES) > PITCH_MIN_RMS
    return int(np.count_nonzero(loud & (correlation.max(axis=1) >= PITCH_CORRELATION)))
