"""RTP from the stand-in to externalMedia hosts, as Asterisk sends it.

Every 20 ms each externalMedia channel that sits in a bridge gets one RTP packet with
what the bridge's other members say: a scripted caller's voice, or the caller a snoop
channel listens to. Like a softmix bridge, Asterisk sends a packet every 20 ms, silence
included. Formats (FIELD-NOTES): ``slin16`` is payload type 118 with 640-byte
big-endian payloads; ``ulaw`` is payload type 0 with 160 bytes at 8 kHz.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from dataclasses import dataclass

from devtools.pbx_sim.engine import Engine
from devtools.pbx_sim.state import SimChannel

log = logging.getLogger(__name__)

TICK_S = 0.02
PAYLOAD_TYPES = {"slin16": 118, "ulaw": 0}
SAMPLES_PER_TICK = {"slin16": 320, "ulaw": 160}
SILENCE_16K = bytes(640)


@dataclass
class _Stream:
    ssrc: int
    seq: int
    timestamp: int


def rtp_packet(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                         timestamp & 0xFFFFFFFF, ssrc)
    return header + payload


def encode(fmt: str, pcm16k_le: bytes) -> bytes:
    """16 kHz little-endian PCM -> the wire payload of ``fmt``."""
    from ivr.speech.codec import downsample_16k_to_8k, pcm_from_bytes, pcm_to_bytes, ulaw_encode

    samples = pcm_from_bytes(pcm16k_le)
    if fmt == "slin16":
        return pcm_to_bytes(samples, big_endian=True)
    return ulaw_encode(downsample_16k_to_8k(samples))


class _Sender(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        # Nobody listening at the external host (ICMP unreachable): Asterisk ignores that too.
        log.debug("RTP send error: %s", exc)


class RtpStreamer:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._streams: dict[str, _Stream] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.packets_sent = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(_Sender, local_addr=("127.0.0.1", 0))
        self._task = loop.create_task(self._run(), name="pbx-sim-rtp")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, tick = loop.time(), 0
        while True:
            tick += 1
            # Absolute deadlines: no drift however long one tick's work takes.
            await asyncio.sleep(max(0.0, start + tick * TICK_S - loop.time()))
            self._tick(tick)

    def _tick(self, tick: int) -> None:
        for channel_id in list(self._engine.media_channel_ids):
            ch = self._engine.channels.get(channel_id)
            if ch is None or ch.bridge_id is None or ch.external_host is None:
                continue
            self._send(ch, self._mix(ch, tick))
        for gone in set(self._streams) - self._engine.media_channel_ids:
            del self._streams[gone]

    def _mix(self, listener: SimChannel, tick: int) -> bytes:
        bridge = self._engine.bridges.get(listener.bridge_id or "")
        for member_id in bridge.channels if bridge else ():
            if member_id == listener.id:
                continue
            voice = self._voice_of(self._engine.channels.get(member_id), tick)
            if voice is not None and voice != SILENCE_16K:
                return voice  # one talker at a time is all a hotline call has
        return SILENCE_16K

    def _voice_of(self, ch: SimChannel | None, tick: int) -> bytes | None:
        if ch is None:
            return None
        if ch.kind == "snoop" and ch.snoop_spy in ("in", "both"):
            ch = self._engine.channels.get(ch.snoop_target or "")
        return ch.call.frame(tick) if ch is not None and ch.call is not None else None

    def _send(self, ch: SimChannel, pcm: bytes) -> None:
        stream = self._streams.get(ch.id)
        first = stream is None
        if stream is None:
            stream = self._streams[ch.id] = _Stream(random.getrandbits(32), random.getrandbits(16), 0)
        packet = rtp_packet(PAYLOAD_TYPES[ch.media_format], stream.seq, stream.timestamp, stream.ssrc,
                            encode(ch.media_format, pcm), marker=first)
        stream.seq += 1
        stream.timestamp += SAMPLES_PER_TICK[ch.media_format]
        if self._transport is not None and ch.external_host is not None:
            self._transport.sendto(packet, ch.external_host)
            self.packets_sent += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
