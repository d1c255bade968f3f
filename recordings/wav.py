"""Reading a WAV file's header: what it holds and how long it plays.

Our own parser (not :mod:`wave`) because it must also read what ``wave`` refuses (Asterisk
writes WAV49/GSM as WAVE format 49) and because a recording is evidence: a file whose header
and length disagree is reported, not guessed around.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


class BadWav(ValueError):
    """The bytes are not a complete, consistent WAV file."""


@dataclass(frozen=True, slots=True)
class WavInfo:
    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    data_bytes: int

    @property
    def duration_s(self) -> float:
        """Seconds of audio, to the millisecond (the byte rate covers every WAVE format)."""
        return round(self.data_bytes / self.byte_rate, 3)


def read_wav_info(data: bytes) -> WavInfo:
    """The header of the WAV file ``data``; :class:`BadWav` when it is not one or is cut short."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadWav("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 > len(data):
        raise BadWav(f"the RIFF header announces {riff_size + 8} bytes, the file has {len(data)}")
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk == b"fmt ":
            if size < 16:
                raise BadWav(f"the fmt chunk is {size} bytes, at least 16 expected")
            tag, channels, rate, byte_rate = struct.unpack_from("<HHII", data, body)
            fmt = (tag, channels, rate, byte_rate)
        elif chunk == b"data":
            if fmt is None:
                raise BadWav("the data chunk comes before the fmt chunk")
            if body + size > len(data):
                raise BadWav(f"the data chunk announces {size} bytes, {len(data) - body} are there")
            tag, channels, rate, byte_rate = fmt
            if channels < 1 or rate < 1 or byte_rate < 1:
                raise BadWav(f"impossible format: {channels} channel(s), {rate} Hz, {byte_rate} bytes/s")
            return WavInfo(tag, channels, rate, byte_rate, size)
        offset = body + size + (size & 1)  # chunks are padded to even lengths
    raise BadWav("no data chunk")
