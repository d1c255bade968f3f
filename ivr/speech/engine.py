"""Speech recognition for menus: one shared Vosk model, a bounded number of streams.

Vosk runs in our own thread pool (it releases the GIL while decoding), never on the event
loop. Each listening call gets a :class:`SpeechStream`, which runs the voice-activity
detector inline (microseconds a frame) and hands Vosk audio only once the caller speaks:
callers spend most of a menu listening to the prompt, and decoding that silence for every
call would cost most of the CPU for nothing. A short pre-roll of the audio before the
detected start goes with it, so the first consonant is not cut.

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

import vosk

from calls.speech import Recognized, SpeechEvent, SpeechStarted
from ivr.speech.grammar import Grammar, compile_grammar, decide
from ivr.speech.locale import SpeechPack
from ivr.speech.vad import (
    ENDED,
    FRAME_BYTES,
    FRAME_MS,
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
TIMEOUT = Recognized(choice=None, transcript="", confidence=0.0, reason="timeout")


class SpeechEngine:
    def __init__(
        self, model: vosk.Model, pack: SpeechPack, *, max_streams: int = 8, threads: int = 2
    ) -> None:
        if max_streams < 1 or threads < 1:
            raise ValueError("max_streams and threads must be at least 1")
        self.model = model
        self.pack = pack
        # Every word is checked now, at start-up: a typo in a pack must not surface as a
        # silently ignored word in the middle of a call.
        known = _vocabulary(model)
        self.grammars: dict[str, Grammar] = {
            name: compile_grammar(menu, known, pack.decoys) for name, menu in pack.menus.items()
        }
        self._capacity = max_streams
        self._live: set[SpeechStream] = set()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vosk")
        self._closed = False

    @classmethod
    async def load(
        cls, model_dir: Path, pack: SpeechPack, *, max_streams: int = 8, threads: int = 2
    ) -> SpeechEngine:
        """Load the model (seconds of work, in a thread) and compile every menu's grammar."""
        vosk.SetLogLevel(-1)  # Kaldi logs every grammar it builds: once per call otherwise
        if not await asyncio.to_thread(Path(model_dir).is_dir):
            raise FileNotFoundError(f"no Vosk model directory at {model_dir}")
        model = await asyncio.to_thread(vosk.Model, str(model_dir))
        return cls(model, pack, max_streams=max_streams, threads=threads)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return len(self._live)

    def open(self, menu: str) -> SpeechStream | None:
        """A stream for one utterance in ``menu``; None when every slot is busy (use DTMF)."""
        grammar = self.grammars.get(menu)
        if grammar is None:
            raise KeyError(
                f"no speech grammar for menu {menu!r} in the {self.pack.locale} pack; "
                f"it has {', '.join(sorted(self.grammars))}"
            )
        if self._closed or len(self._live) >= self._capacity:
            return None
        stream = SpeechStream(self, grammar)
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
    opened. After ``Recognized`` the stream is done; the caller closes it (its slot).
    """

    def __init__(self, engine: SpeechEngine, grammar: Grammar) -> None:
        self._engine = engine
        self.grammar = grammar
        self._detector = EndpointDetector()
        self._decoder: _Decoder | None = _Decoder(engine.model, grammar.json)
        self._preroll: deque[bytes] = deque(maxlen=PREROLL_MS // FRAME_MS)
        self._batch: list[bytes] = []
        #: The batch Vosk is decoding now (at most one: a stream's batches run in order).
        self._inflight: asyncio.Future[Any] | None = None
        self._lock = asyncio.Lock()
        self.result: Recognized | None = None
        self.closed = False

    async def feed(self, frame: bytes) -> list[SpeechEvent]:
        """One 20 ms frame (640 bytes of 16 kHz little-endian PCM) -> events, often none."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes (20 ms, 16 kHz, 16-bit), got {len(frame)}")
        async with self._lock:
            if self.closed or self.result is not None:
                return []
            event = self._detector.push(frame)
            if not self._detector.started:
                self._preroll.append(frame)
                return []
            if event == STARTED:
                # The voiced frames that started it are the pre-roll's last ones.
                self._batch.extend(self._preroll)
                self._preroll.clear()
                self._batch.append(frame)
                start = self._detector.start_frame or 0
                await self._send_batch()
                return [SpeechStarted(at_ms=start * FRAME_MS)]
            self._batch.append(frame)
            if event == ENDED:
                return [await self._decide()]
            if len(self._batch) >= BATCH_FRAMES:
                await self._send_batch()
            return []

    async def finish(self) -> Recognized:
        """Decide now (a no-input timer ran out): on what was heard, or "timeout"."""
        async with self._lock:
            if self.result is not None:
                return self.result
            if self.closed or not self._detector.started:
                self.result = TIMEOUT
                return self.result
            return await self._decide()

    def close(self) -> None:
        """Free the slot and the recognizer; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._decoder = None
        self._batch.clear()
        if self._inflight is not None:
            self._inflight.add_done_callback(_consume)
        self._engine._release(self)

    # --- Vosk, in the pool --------------------------------------------------------------

    async def _send_batch(self) -> None:
        """Start decoding the collected frames without waiting for it to finish.

        Only if Vosk is still busy with the previous batch (slower than real time) does
        this wait: the caller's pump then slows down instead of audio piling up.
        """
        await self._settle()
        if self._decoder is None:
            return
        audio, self._batch = b"".join(self._batch), []
        self._inflight = self._engine._run(self._decoder.accept, audio)

    async def _decide(self) -> Recognized:
        await self._settle()
        decoder, audio, self._batch = self._decoder, b"".join(self._batch), []
        if decoder is None:  # closed meanwhile
            return TIMEOUT
        result = await self._engine._run(decoder.final, audio)
        self._decoder = None  # one utterance per stream: the recognizer is done
        choice, transcript, confidence = decide(self.grammar, result)
        if decoder.pitched < MIN_PITCHED_FRAMES:
            choice = None  # no voice in it: Vosk's words are noise forced onto the grammar
        reason = "match" if choice is not None else "no_match"
        self.result = Recognized(choice, transcript, confidence, reason)
        log.debug("menu %s heard %r -> %s (%.2f)", self.grammar.menu, transcript, reason, confidence)
        return self.result

    async def _settle(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            await inflight


def _vocabulary(model: vosk.Model) -> Callable[[str], bool]:
    def known(word: str) -> bool:
        return bool(model.vosk_model_find_word(word) != -1)

    return known


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a batch nobody waits for any more (no "never retrieved")."""
    if not future.cancelled():
        future.exception()
