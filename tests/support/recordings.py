"""Recordings made without a call: an index row and its file, as storage leaves them."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from recordings.index import RecordingIndex
from recordings.models import Recording
from recordings.storage import write_atomically


def wav_bytes(seconds: float, *, rate: int = 8000, seed: int = 0) -> bytes:
    """A mono 16-bit WAV whose samples differ by ``seed`` (so hashes differ)."""
    frames = int(seconds * rate)
    pcm = bytes((i * 7 + seed) % 256 for i in range(frames * 2))
    header = (b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
              + (rate * 2).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + len(pcm).to_bytes(4, "little"))
    return header + pcm


async def stored_recording(index: RecordingIndex, root: Path, *, agent_id: str | None = "1001",
                           jurisdiction: str = "330100", call_id: str | None = None, seconds: float = 1.0,
                           seed: int = 0) -> Recording:
    call_id = call_id or str(uuid.uuid4())
    row = await index.begin(call_id=call_id, segment=1, agent_id=agent_id, jurisdiction=jurisdiction, fmt="wav")
    data = wav_bytes(seconds, seed=seed)
    relative = f"2026/12/08/{jurisdiction}/{row.name}.wav"
    write_atomically(root / relative, data)
    stored = await index.stored(row.name, path=relative, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                duration_s=seconds)
    assert stored is not None
    return stored
