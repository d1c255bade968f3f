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
