"""Audio sample helpers for the phone line: G.711 μ-law, 8 kHz ↔ 16 kHz, byte order.

All functions work on numpy ``int16`` arrays or on raw bytes and never touch the
event loop's time budget in a meaningful way (a 20 ms frame is a few microseconds).
``audioop`` is not used: it was removed from the standard library in Python 3.13.

Samples are signed 16-bit linear PCM. Byte strings of PCM are little-endian unless a
function name says ``be`` (RTP's L16/slin16 payloads are big-endian, network order).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ulaw_decode",
    "ulaw_encode",
    "be_to_le",
    "le_to_be",
    "pcm_from_bytes",
    "pcm_to_bytes",
    "Upsampler2x",
    "Downsampler2x",
    "upsample_8k_to_16k",
    "downsample_16k_to_8k",
    "Concealer",
]

# --- G.711 μ-law -------------------------------------------------------------------

_BIAS = 0x84  # 132: added before the segment search so that every segment starts at a power of two
_CLIP = 32635  # largest magnitude that still fits after adding the bias


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF  # μ-law bytes are sent inverted
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_DECODE = _build_decode_table()
# Segment (exponent) for a biased magnitude, indexed by its bits 7..14: the position of
# the highest set bit. 256 entries cover every biased magnitude up to 0x7FFF.
_SEGMENT = np.floor(np.log2(np.maximum(np.arange(256), 1))).astype(np.int32)


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes → int16 samples (same count)."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples → μ-law bytes (ITU-T G.711, with the customary ±32635 clip)."""
    x = np.asarray(samples, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS
    exponent = _SEGMENT[magnitude >> 7]
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return np.asarray(~(sign | (exponent << 4) | mantissa) & 0xFF, dtype=np.uint8).tobytes()


# --- byte order --------------------------------------------------------------------


def be_to_le(data: bytes) -> bytes:
    """Swap 16-bit big-endian PCM (RTP L16/slin16) to little-endian (what Vosk reads)."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even byte count, got {len(data)}")
    return np.frombuffer(data, dtype=">i2").astype("<i2").tobytes()


def le_to_be(data: bytes) -> bytes:
    """Swap 16-bit little-endian PCM to big-endian (network order)."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even byte count, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(">i2").tobytes()


def pcm_from_bytes(data: bytes, *, big_endian: bool = False) -> np.ndarray:
    """16-bit PCM bytes → native int16 array."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even byte count, got {len(data)}")
    return np.frombuffer(data, dtype=">i2" if big_endian else "<i2").astype(np.int16)


def pcm_to_bytes(samples: np.ndarray, *, big_endian: bool = False) -> bytes:
    """int16 array → 16-bit PCM bytes."""
    return np.asarray(samples).astype(">i2" if big_endian else "<i2").tobytes()


# --- resampling by two -------------------------------------------------------------
#
# A telephone channel carries nothing above ~3.4 kHz, so a short half-band low-pass is
# enough: 8 kHz → 16 kHz inserts zeros and removes the mirror image above 4 kHz;
# 16 kHz → 8 kHz removes everything above 4 kHz before dropping every other sample.
# Both are streaming: they keep the filter's history between calls, so feeding a call
# 20 ms at a time gives exactly the same samples as feeding it in one piece.

_TAPS = 47  # odd: a linear-phase filter with a whole-sample delay of 23 samples


def _halfband_lowpass(taps: int = _TAPS) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    h = 0.5 * np.sinc(0.5 * n) * np.blackman(taps)  # cut-off at a quarter of the rate
    return np.asarray(h / h.sum(), dtype=np.float64)


_LOWPASS = _halfband_lowpass()


class Upsampler2x:
    """Streaming 2× interpolator (8 kHz → 16 kHz)."""

    def __init__(self) -> None:
        # Polyphase: output sample 2n uses the even taps, 2n+1 the odd ones.
        self._even = (2 * _LOWPASS[0::2]).astype(np.float64)
        self._odd = (2 * _LOWPASS[1::2]).astype(np.float64)
        self._history = np.zeros(len(self._even) - 1, dtype=np.float64)

    def process(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) == 0:
            return np.zeros(0, dtype=np.int16)
        x = np.concatenate([self._history, np.asarray(samples, dtype=np.float64)])
        even = np.convolve(x, self._even, mode="valid")
        # The odd phase has one tap fewer: start one sample later to stay aligned.
        odd = np.convolve(x[1:], self._odd, mode="valid")
        n = len(samples)
        out = np.empty(2 * n, dtype=np.float64)
        out[0::2] = even[:n]
        out[1::2] = odd[:n]
        self._history = x[-(len(self._even) - 1):]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


class Downsampler2x:
    """Streaming 2× decimator (16 kHz → 8 kHz); input chunks must have an even length."""

    def __init__(self) -> None:
        self._history = np.zeros(len(_LOWPASS) - 1, dtype=np.float64)

    def process(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) % 2:
            raise ValueError("the 16 kHz → 8 kHz decimator needs an even number of samples")
        x = np.concatenate([self._history, np.asarray(samples, dtype=np.float64)])
        y = np.convolve(x, _LOWPASS, mode="valid")[0::2]
        self._history = x[-(len(_LOWPASS) - 1):]
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def upsample_8k_to_16k(samples: np.ndarray) -> np.ndarray:
    """Whole-signal 8 kHz → 16 kHz (delays the signal by the filter's 23 samples)."""
    return Upsampler2x().process(samples)


def downsample_16k_to_8k(samples: np.ndarray) -> np.ndarray:
    """Whole-signal 16 kHz → 8 kHz; an odd trailing sample is dropped."""
    samples = np.asarray(samples)
    return Downsampler2x().process(samples[: len(samples) // 2 * 2])


# --- packet loss concealment ---------------------------------------------------------
#
# A lost 20 ms packet inside a word must not become a hole in it: a silence gap splits
# one word into two for the recognizer, and a plain repeat of the last frame clicks at
# both ends (a broadband burst the detector and Vosk both hear). What a voice does next is
# most likely what it just did, one pitch period at a time, so the gap is filled by
# repeating the last period (found by autocorrelation), joined where the waveform matches,
# held for 10 ms and faded out by 60 ms: a vowel is carried over a packet or two, a longer
# gap becomes silence, and nothing long enough to sound like a syllable is made up. When
# real audio comes back, the made-up continuation is cross-faded into it.

_MIN_PITCH_HZ, _MAX_PITCH_HZ = 60, 400  # voices' fundamental frequencies
_HOLD_S, _FADE_END_S = 0.010, 0.060  # full level for 10 ms, then down to nothing at 60 ms
_JOIN_S = 0.004  # cross-fade into the real audio after a gap (and out of it when idle)
_VOICED_CORRELATION = 0.3  # below this the last audio has no period worth repeating


class FilledSilence(bytes):
    """A frame of silence the RTP receiver made up for time no packet covered: RTP that began
    late or stopped, a sender's silence suppression. It is audio, and plays as silence; but it
    is not the line, and the endpoint detector learns nothing of the line's sound from it
    (a floor learnt from it sat far under the noise that followed, issue 16)."""

    __slots__ = ()


class Concealer:
    """Fills the frames a loss took out of one audio stream, at the stream's own rate.

    Every real frame goes through :meth:`real` (which cross-fades it in after a gap);
    :meth:`conceal` makes up the next missing frame; :meth:`silence` is a frame of nothing
    that fades out what was sounding (for a stream that stopped, not one with a hole).
    """

    def __init__(self, rate: int, frame_samples: int) -> None:
        self._frame = frame_samples
        self._min_lag = rate // _MAX_PITCH_HZ
        self._max_lag = rate // _MIN_PITCH_HZ
        self._window = max(self._min_lag * 2, rate // 200)  # 5 ms of the newest audio is matched
        self._hold = round(_HOLD_S * rate)
        self._fade_end = round(_FADE_END_S * rate)
        self._join = round(_JOIN_S * rate)
        # Enough history to match the newest window against one lag back at most.
        self._history = np.zeros(self._max_lag + self._window, dtype=np.float64)
        self._period: np.ndarray | None = None  # one period to repeat, while concealing
        self._phase = 0  # where in that period the next sample comes from
        self._gap = 0  # samples made up since the last real frame
        self._sounding = False  # the last thing handed out may be non-zero

    @property
    def concealing(self) -> bool:
        return self._gap > 0

    def real(self, samples: np.ndarray) -> np.ndarray:
        """A frame that arrived: returned as is, or cross-faded in from the made-up audio."""
        x = np.asarray(samples, dtype=np.float64)
        if self._gap and self._sounding:
            n = min(self._join, len(x))
            ramp = (np.arange(n) + 1) / (n + 1)
            x = x.copy()
            x[:n] = self._continue(n) * (1 - ramp) + x[:n] * ramp
        self._remember(x)
        self._period, self._gap, self._sounding = None, 0, True
        return _to_int16(x)

    def conceal(self) -> np.ndarray:
        """The next frame of a gap: the voice carried on, fading; silence after 60 ms."""
        out = self._continue(self._frame) if self._sounding else np.zeros(self._frame)
        self._sounding = bool(self._gap < self._fade_end)
        return _to_int16(out)

    def silence(self) -> np.ndarray:
        """A frame of silence, fading out in 4 ms whatever was sounding (no click)."""
        out = np.zeros(self._frame)
        if self._sounding:
            n = min(self._join, self._frame)
            tail = self._continue(n)
            out[:n] = tail * (1 - (np.arange(n) + 1) / (n + 1))
            self._gap += self._frame - n
            self._sounding = False
        else:
            self._gap += self._frame
        return _to_int16(out)

    # --- internals -------------------------------------------------------------------

    def _remember(self, x: np.ndarray) -> None:
        keep = len(self._history)
        self._history = np.concatenate([self._history, x])[-keep:]

    def _last_period(self) -> np.ndarray:
        """The last pitch period of the history (or its last 15 ms when it has no pitch)."""
        h, w = self._history, self._window
        newest = h[-w:]
        lags = np.arange(self._min_lag, self._max_lag + 1)
        # Correlation of the newest window with the window `lag` samples earlier, normalized.
        starts = len(h) - w - lags
        segments = h[starts[:, None] + np.arange(w)]
        dots = segments @ newest
        energy = np.sqrt((segments * segments).sum(axis=1) * float(newest @ newest)) + 1e-9
        score = dots / energy
        best = int(np.argmax(score))
        lag = int(lags[best]) if score[best] >= _VOICED_CORRELATION else self._max_lag
        return h[-lag:].copy()

    def _continue(self, n: int) -> np.ndarray:
        """``n`` more samples of the repeated period, with the gap's gain applied."""
        if self._period is None:  # the gap starts here
            self._period, self._phase = self._last_period(), 0
        period = self._period
        index = (self._phase + np.arange(n)) % len(period)
        self._phase = int((self._phase + n) % len(period))
        t = self._gap + np.arange(n) + 1  # the last sample of the fade is zero
        gain = np.clip((self._fade_end - t) / (self._fade_end - self._hold), 0.0, 1.0)
        self._gap += n
        return np.asarray(period[index] * gain, dtype=np.float64)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(np.rint(x), -32768, 32767), dtype=np.int16)
