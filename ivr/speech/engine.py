"""Speech recognition for menus: one shared Vosk model, a bounded number of streams.

Vosk runs in our own thread pool (it releases the GIL while decoding), never on the event
loop. Each listening call gets a :class:`SpeechStream`, which runs the voice-activity
detector inline (a neural voice model and a noise floor, ~100 µs a frame: ivr.speech.vad)
and hands Vosk audio only once the caller speaks: callers spend most of a menu listening to
the prompt, and decoding that silence for every call would cost most of the CPU for
nothing. A short pre-roll of the audio before the detected start goes with it, so the first
consonant is not cut, and all of it at the caller's corrected level (ivr.speech.level).

Barge-in waits for a confirmed voice: :class:`SpeechStarted` (which stops the prompt) comes
when the detector has heard 160 ms of voice or Vosk's partial result has a word, not on the
first loud burst. A burst that ends unconfirmed and without words (a cough, a click) does not
end the turn: the stream starts over and keeps listening for the caller.

When every slot is busy, :meth:`SpeechEngine.open` says so (None) and the menu takes keys
only: audio is never queued behind other calls, where it would arrive too late to matter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import vosk

from calls.speech import Recognized, SpeechEvent, SpeechStarted
from ivr.speech.codec import FilledSilence
from ivr.speech.denoise import NoiseReducer
from ivr.speech.grammar import MAX_ALTERNATIVES, UNKNOWN_TOKENS, Grammar, Margins, compile_grammar, decide
from ivr.speech.level import LevelControl
from ivr.speech.locale import SpeechPack
from ivr.speech.neural import VoiceModels
from ivr.speech.vad import (
    CONFIRMED,
    ENDED,
    FRAME_BYTES,
    FRAME_MS,
    RETRO_FRAMES,
    RETRO_PREROLL_FRAMES,
    SAMPLE_RATE,
    STARTED,
    EndpointDetector,
    pitched_frames,
)

__all__ = ["SpeechEngine", "SpeechStream", "SpeechStarted", "Recognized", "SpeechEvent"]

log = logging.getLogger(__name__)

#: Audio before the detected start that Vosk also gets (the detector needs a few voiced
#: frames to be sure, and weak onsets such as /s/ or /h/ come before those).
PREROLL_MS = 300
#: Vosk gets audio in 100 ms batches: fewer hand-offs to the pool, and still well inside
#: the time between the end of speech and the decision.
BATCH_FRAMES = 5
#: An utterance with fewer frames that carry a pitch is not a voice (hiss, clicks): no
#: match, whatever Vosk made of it. 80 ms: shorter than the vowel of any phrase (menu
#: phrases over a phone line had 8 or more), longer than what noise produced (at most 1).
MIN_PITCHED_FRAMES = 4
#: Words that are no word: the unknown-word tokens (a noise Vosk could not place).
UNKNOWN_WORDS = frozenset(UNKNOWN_TOKENS)
#: Voice models built at start-up (each ~45 ms and ~11 MB); more are built when needed.
WARM_VOICE_MODELS = 4
TIMEOUT = Recognized(choice=None, transcript="", confidence=0.0, reason="timeout")
#: A caller whose loudest syllable stands less than this far above the line's background (dB)
#: is asked about every choice, however wide its margin: noise bends Vosk's n-best lists
#: too. In the noisy set (2026-12-06) every choice taken at once and wrong with pink noise or
#: babble at 15 dB SNR (2-3 of a line's 60 turns in each of two draws) had confidence 1.0:
#: nothing else in Vosk's lattice, so no margin catches it. The callers on those lines stood
#: 19-38 dB above the background; on a clean line, a -20 dB one too, 49 dB and more.
CONFIRM_BELOW_DB = 30.0


class SpeechEngine:
    def __init__(
        self, model: vosk.Model, pack: SpeechPack, *, max_streams: int = 8, threads: int = 2,
        no_word_timeout_s: float = 3.0, max_utterance_s: float = 10.0, margins: Margins | None = None,
        confirm_below_db: float = CONFIRM_BELOW_DB, noise_reduction: bool = True,
    ) -> None:
        if max_streams < 1 or threads < 1:
            raise ValueError("max_streams and threads must be at least 1")
        if no_word_timeout_s <= 0 or max_utterance_s <= 0:
            raise ValueError("no_word_timeout_s and max_utterance_s must be above 0")
        if confirm_below_db < 0:
            raise ValueError(f"confirm_below_db is a level in dB, 0 or more (0: never), got {confirm_below_db}")
        self.model = model
        self.pack = pack
        self.no_word_timeout_s = no_word_timeout_s
        self.max_utterance_s = max_utterance_s
        self.confirm_below_db = confirm_below_db
        #: Steady line noise taken out of what the recognizer hears (ivr/speech/denoise.py).
        self.noise_reduction = noise_reduction
        #: One neural voice model per live stream, reused from call to call.
        self.voices = VoiceModels()
        # Every word is checked now, at start-up: a typo in a pack must not surface as a
        # silently ignored word in the middle of a call.
        known = _vocabulary(model)
        self.grammars: dict[str, Grammar] = {
            name: compile_grammar(menu, known, pack.decoys, margins) for name, menu in pack.menus.items()
        }
        self._capacity = max_streams
        self._live: set[SpeechStream] = set()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vosk")
        self._closed = False

    @classmethod
    async def load(
        cls, model_dir: Path, pack: SpeechPack, *, max_streams: int = 8, threads: int = 2,
        no_word_timeout_s: float = 3.0, max_utterance_s: float = 10.0, margins: Margins | None = None,
        confirm_below_db: float = CONFIRM_BELOW_DB, noise_reduction: bool = True,
    ) -> SpeechEngine:
        """Load the model (seconds of work, in a thread) and compile every menu's grammar."""
        vosk.SetLogLevel(-1)  # Kaldi logs every grammar it builds: once per call otherwise
        if not await asyncio.to_thread(Path(model_dir).is_dir):
            raise FileNotFoundError(f"no Vosk model directory at {model_dir}")
        model = await asyncio.to_thread(vosk.Model, str(model_dir))
        engine = cls(model, pack, max_streams=max_streams, threads=threads,
                     no_word_timeout_s=no_word_timeout_s, max_utterance_s=max_utterance_s, margins=margins,
                     confirm_below_db=confirm_below_db, noise_reduction=noise_reduction)
        # Voice models take ~45 ms each to build: a few now, off the event loop, the rest
        # as calls first need them.
        await asyncio.to_thread(engine.voices.warm, min(max_streams, WARM_VOICE_MODELS))
        return engine

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return len(self._live)

    def open(self, menu: str, *, can_ask: bool = False) -> SpeechStream | None:
        """A stream for one utterance in ``menu``; None when every slot is busy (use DTMF).
        ``can_ask``: the menu has a confirmation turn ("you said complaint?"), so a choice
        heard on a noisy line (see CONFIRM_BELOW_DB) comes as "confirm", not "match"; a menu
        without one (the city question) takes it as heard."""
        grammar = self.grammars.get(menu)
        if grammar is None:
            raise KeyError(
                f"no speech grammar for menu {menu!r} in the {self.pack.locale} pack; "
                f"it has {', '.join(sorted(self.grammars))}"
            )
        if self._closed or len(self._live) >= self._capacity:
            return None
        stream = SpeechStream(self, grammar, can_ask=can_ask)
        self._live.add(stream)
        return stream

    async def close(self) -> None:
        """Stop every stream and shut the pool down (waiting for a running decode)."""
        self._closed = True
        for stream in list(self._live):
            stream.close()
        # Queued batches (at most one per stream, 100 ms of audio each) are let finish.
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    # --- for streams ------------------------------------------------------------------

    def _release(self, stream: SpeechStream) -> None:
        self._live.discard(stream)

    def _run(self, work: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().run_in_executor(self._pool, work, *args)


class _Decoder:
    """One utterance's KaldiRecognizer, only ever used by one pool thread at a time.

    The recognizer is made on the first batch, in the pool (building the grammar's graph
    is work too). A stream that is closed while a batch is decoding just drops its
    reference: the running batch keeps the decoder alive until it returns.
    """

    def __init__(self, model: vosk.Model, grammar_json: str) -> None:
        self._model = model
        self._grammar = grammar_json
        self._recognizer: vosk.KaldiRecognizer | None = None
        #: Frames with a pitch so far (see ivr.speech.vad.pitched_frames).
        self.pitched = 0

    def accept(self, audio: bytes) -> None:
        self.pitched += pitched_frames(audio)
        if self._recognizer is None:
            self._recognizer = vosk.KaldiRecognizer(self._model, SAMPLE_RATE, self._grammar)
            self._recognizer.SetWords(True)
            # The n best hypotheses with their likelihoods: the decision is on the margin
            # between them (ivr.speech.grammar.decide), not on one word confidence.
            self._recognizer.SetMaxAlternatives(MAX_ALTERNATIVES)
        if audio:
            self._recognizer.AcceptWaveform(audio)

    def final(self, audio: bytes) -> dict[str, Any]:
        self.accept(audio)
        assert self._recognizer is not None
        result: dict[str, Any] = json.loads(self._recognizer.FinalResult())
        return result


class SpeechStream:
    """One caller's utterance in one menu: feed 20 ms frames, get events back.

    ``SpeechStarted.at_ms`` is where the voice began, in ms of audio since the stream
    opened; it comes once the voice is confirmed (barge-in), always before ``Recognized``.
    After ``Recognized`` the stream is done; the caller closes it (its slot).
    """

    def __init__(self, engine: SpeechEngine, grammar: Grammar, *, can_ask: bool = False) -> None:
        self._engine = engine
        self.grammar = grammar
        self._can_ask = can_ask
        self._voice = engine.voices.take()
        self._detector = EndpointDetector(
            self._voice, no_word_timeout_s=engine.no_word_timeout_s, max_utterance_s=engine.max_utterance_s
        )
        self._level = LevelControl()
        self._denoise = NoiseReducer() if engine.noise_reduction else None
        self._decoder: _Decoder | None = _Decoder(engine.model, grammar.json)
        #: The frames before a start: the pre-roll, and in a stream's first seconds all of them
        #: (a start found afterwards reaches back to the first frame: EndpointDetector._rejudge).
        self._preroll: deque[bytes] = deque(maxlen=RETRO_FRAMES)
        self._batch: list[bytes] = []
        #: The batch Vosk is decoding now (at most one: a stream's batches run in order).
        self._inflight: asyncio.Future[tuple[str, ...]] | None = None
        self._lock = asyncio.Lock()
        #: The words (not unknown-word tokens) of Vosk's latest partial result.
        self._words: tuple[str, ...] = ()
        self._announced = False
        #: Utterances dropped as bursts (a cough, a click): no voice, no words.
        self.bursts = 0
        self.result: Recognized | None = None
        self.closed = False

    async def feed(self, frame: bytes) -> list[SpeechEvent]:
        """One 20 ms frame (640 bytes of 16 kHz little-endian PCM) -> events, often none."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes (20 ms, 16 kHz, 16-bit), got {len(frame)}")
        async with self._lock:
            if self.closed or self.result is not None:
                return []
            detector = self._detector
            event = detector.push(frame)
            if detector.voice:
                self._level.voice(detector.level)
            if not detector.started:
                self._preroll.append(frame)
                self._learn_the_line(frame)
                return []
            if event == STARTED:
                # The voiced frames that started it are the pre-roll's last ones.
                self._batch.extend(self._before(detector.start_frame or 0, detector.frames - 1))
                self._preroll.clear()
                self._batch.append(frame)
                return await self._send_batch()
            self._batch.append(frame)
            events: list[SpeechEvent] = [self._announce()] if event == CONFIRMED else []
            if event == ENDED:
                return events + await self._end()
            if len(self._batch) >= BATCH_FRAMES:
                events += await self._send_batch()
            return events

    def _learn_the_line(self, frame: bytes) -> None:
        """A frame before the caller speaks that is no voice: the line's noise (silence the
        receiver made up is none)."""
        detector = self._detector
        if self._denoise is None or detector.voice or detector.background is None or isinstance(frame, FilledSilence):
            return
        self._denoise.learn(np.frombuffer(frame, dtype="<i2"), detector.background)

    def _take_batch(self, *, last: bool = False) -> bytes:
        """The collected frames as the recognizer hears them: at the caller's level, a noisy
        line's noise turned down (``last``: the utterance's end, with what the filter held)."""
        audio, self._batch = self._level.apply(b"".join(self._batch)), []
        if self._denoise is None:
            return audio
        audio = self._denoise.apply(audio, self._level.gain_db)
        if last:
            audio += self._denoise.flush()
            self._denoise.restart()
        return audio

    def _before(self, start: int, now: int) -> list[bytes]:
        """The kept frames the recognizer gets with a start at frame ``start`` said at frame
        ``now``: the last PREROLL_MS, or from shortly before a start found afterwards."""
        kept = list(self._preroll)
        first_kept = now - len(kept)
        begin = min(now - PREROLL_MS // FRAME_MS, start - RETRO_PREROLL_FRAMES)
        return kept[max(0, begin - first_kept):]

    async def finish(self) -> Recognized:
        """Decide now (a no-input timer ran out): on what was heard, or "timeout"."""
        async with self._lock:
            if self.result is not None:
                return self.result
            if self.closed or not self._detector.started:
                self.result = TIMEOUT
                return self.result
            decoder = self._decoder
            recognized = await self._decide()
            if not self._announced and self._is_burst(recognized, decoder):
                self.result = recognized = TIMEOUT  # only a burst was heard: as if nothing was said
            return recognized

    def close(self) -> None:
        """Free the slot, the recognizer and the voice model; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._decoder = None
        self._batch.clear()
        if self._inflight is not None:
            self._inflight.add_done_callback(_consume)
        self._engine.voices.give_back(self._voice)
        self._engine._release(self)

    # --- barge-in and bursts ------------------------------------------------------------

    def _announce(self) -> SpeechStarted:
        self._announced = True
        return SpeechStarted(at_ms=(self._detector.start_frame or 0) * FRAME_MS)

    def _heard(self, words: tuple[str, ...]) -> list[SpeechEvent]:
        """Vosk's partial result after a batch: a new word confirms the voice (barge-in)."""
        if not words or words == self._words:
            return []
        self._words = words
        confirmed_now = self._detector.word_heard()
        return [self._announce()] if confirmed_now and not self._announced else []

    def _is_burst(self, recognized: Recognized, decoder: _Decoder | None) -> bool:
        """Nothing a caller says: no pitch, no word, or one steady level (a hum, a tone)."""
        if decoder is None:  # closed meanwhile: nothing was decided on
            return False
        if decoder.pitched < MIN_PITCHED_FRAMES or not _real_words(recognized.transcript):
            return True
        # On a noisy line the detector sees only the top of a voice, what stands out of the
        # noise: a short word's rise and fall hide under the floor and it looks as steady as a
        # hum ("이" in babble at 15 dB SNR: 4.5 dB). A menu choice heard there that the caller
        # will be asked about (every choice on a noisy line is, in a menu that can ask) stands.
        return self._detector.steady and not (recognized.proposed is not None and self._noisy_line())

    async def _end(self) -> list[SpeechEvent]:
        decoder = self._decoder
        recognized = await self._decide()
        if self._announced:
            return [recognized]
        if not self._is_burst(recognized, decoder):
            return [self._announce(), recognized]  # a short word, heard before it was confirmed
        # A cough, a click, a burst of noise: no voice in it and no words. The caller has
        # not spoken yet; listen on in the same turn with a new recognizer.
        log.debug("menu %s: a burst of %d ms without a voice, listening on", self.grammar.menu,
                  (self._detector.frames - (self._detector.start_frame or 0)) * FRAME_MS)
        self.bursts += 1
        self.result = None
        self._decoder = _Decoder(self._engine.model, self.grammar.json)
        self._words = ()
        self._detector.listen_again()
        return []

    # --- Vosk, in the pool --------------------------------------------------------------

    async def _send_batch(self) -> list[SpeechEvent]:
        """Start decoding the collected frames without waiting for it to finish.

        Only if Vosk is still busy with the previous batch (slower than real time) does
        this wait: the caller's pump then slows down instead of audio piling up. What the
        previous batch made of the words is looked at here (barge-in on a word).
        """
        events = self._heard(await self._settle())
        if self._decoder is None:
            return events
        self._inflight = self._engine._run(_listen, self._decoder, self._take_batch())
        return events

    async def _decide(self) -> Recognized:
        await self._settle()
        decoder, audio = self._decoder, self._take_batch(last=True)
        if decoder is None:  # closed meanwhile
            return TIMEOUT
        result = await self._engine._run(decoder.final, audio)
        self._decoder = None  # one utterance per stream: the recognizer is done
        heard = decide(self.grammar, result)
        transcript = heard.transcript
        voiceless = decoder.pitched < MIN_PITCHED_FRAMES
        if voiceless:  # no voice in it: Vosk's words are noise forced onto the grammar
            heard = Recognized(None, transcript, heard.confidence, "no_match")
        elif heard.reason == "match" and self._can_ask and self._noisy_line():
            heard = Recognized(None, transcript, heard.confidence, "confirm", proposed=heard.choice)
        self.result = heard
        log.debug("menu %s heard %r -> %s (%.2f)", self.grammar.menu, transcript, heard.reason, heard.confidence)
        return self.result

    def _noisy_line(self) -> bool:
        above = self._detector.above_background_db
        return above is not None and above < self._engine.confirm_below_db

    async def _settle(self) -> tuple[str, ...]:
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return ()
        return await inflight


def _listen(decoder: _Decoder, audio: bytes) -> tuple[str, ...]:
    """Decode a batch (in the pool); the words of the partial result so far."""
    decoder.accept(audio)
    recognizer = decoder._recognizer
    if recognizer is None:
        return ()
    partial: dict[str, Any] = json.loads(recognizer.PartialResult())
    return _real_words(str(partial.get("partial", "")))


def _real_words(text: str) -> tuple[str, ...]:
    return tuple(w for w in text.split() if w not in UNKNOWN_WORDS)


def _vocabulary(model: vosk.Model) -> Callable[[str], bool]:
    def known(word: str) -> bool:
        return bool(model.vosk_model_find_word(word) != -1)

    return known


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a batch nobody waits for any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()
