"""Start and end of a caller's utterance, from webrtcvad on 20 ms frames.

We decide end of speech ourselves instead of waiting for Vosk's endpointer (about a
second of trailing silence in the small models): the product target is a decision within
400 ms (p95) of the caller stopping. Measured on phone-line speech: webrtcvad keeps saying
"voiced" for about 100 ms after the voice stops (its own hang-over), then we wait
``end_silence_ms``, then FinalResult takes 20-40 ms. With the default 200 ms that is about
330 ms in all, leaving room for a busy machine; and with the hang-over, a pause of up to
~300 ms inside a phrase ("담당자 ... 바꿔 주세요") does not cut it in two.
"""

from __future__ import annotations

import numpy as np
import webrtcvad

SAMPLE_RATE = 16_000
FRAME_MS = 20
#: One frame of 16-bit little-endian mono PCM at 16 kHz.
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2

STARTED = "speech_started"
ENDED = "speech_ended"


class EndpointDetector:
    """Feed 20 ms frames; says ``speech_started`` once, then ``speech_ended`` once.

    ``start_frames`` voiced frames in a row start an utterance. webrtcvad calls the first
    60-100 ms of any new steady sound voice while its noise estimate settles (line hiss
    when a stream opens, noise that sets in, a train of clicks gives runs of 4), so six
    frames (120 ms) are asked for: past those transients, and still quick enough that
    barge-in stops the prompt within a syllable. ``end_silence_ms`` of unvoiced frames end
    it; ``max_utterance_s`` ends it anyway, so that a caller who never pauses (or steady
    noise that webrtcvad takes for voice) cannot keep a menu waiting forever.
    """

    def __init__(
        self,
        *,
        aggressiveness: int = 2,
        start_frames: int = 6,
        end_silence_ms: int = 200,
        max_utterance_s: float = 10.0,
    ) -> None:
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"webrtcvad aggressiveness is 0..3, got {aggressiveness}")
        if start_frames < 1 or end_silence_ms < FRAME_MS or max_utterance_s <= 0:
            raise ValueError(
                "start_frames >= 1, end_silence_ms >= 20 and max_utterance_s > 0 are required"
            )
        self._vad = webrtcvad.Vad(aggressiveness)
        self._start_frames = start_frames
        self._end_frames = -(-end_silence_ms // FRAME_MS)  # ceiling: at least the asked silence
        self._max_frames = int(max_utterance_s * 1000 // FRAME_MS)
        self.frames = 0
        #: Index of the first voiced frame of the utterance, once started.
        self.start_frame: int | None = None
        self.ended = False
        self._voiced_run = 0
        self._silent_run = 0

    @property
    def started(self) -> bool:
        return self.start_frame is not None

    def push(self, frame: bytes) -> str | None:
        """One 20 ms frame (640 bytes); None, ``speech_started`` or ``speech_ended``."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(
                f"a frame is {FRAME_BYTES} bytes (20 ms of 16 kHz 16-bit PCM), got {len(frame)}"
            )
        index = self.frames
        self.frames += 1
        if self.ended:
            return None
        voiced = self._vad.is_speech(frame, SAMPLE_RATE)
        if self.start_frame is None:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run >= self._start_frames:
                self.start_frame = index - self._start_frames + 1
                return STARTED
            return None
        self._silent_run = 0 if voiced else self._silent_run + 1
        too_long = index - self.start_frame + 1 >= self._max_frames
        if self._silent_run >= self._end_frames or too_long:
            self.ended = True
            return ENDED
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
