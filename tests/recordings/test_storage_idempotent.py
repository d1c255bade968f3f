"""Storing a finished recording can be repeated after a crash at any step: the same file,
the same row, no copy left in Asterisk; a file that is not a whole WAV is marked failed."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ari.errors import AriNotFound
from core.db import sessionmaker
from core.settings import RecordingSettings
from recordings.index import RecordingIndex
from recordings.storage import RecordingStore, relative_path
from tests.support.recordings import wav_bytes


class FakeAsterisk:
    """Asterisk's spool of stored recordings, as ARI serves it."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.fetches = 0

    async def fetch(self, name: str, fmt: str) -> bytes:
        self.fetches += 1
        if name not in self.files:
            raise AriNotFound("GET", f"/recordings/stored/{name}/file", 404, "Recording not found")
        return self.files[name]

    async def delete(self, name: str) -> None:
        if self.files.pop(name, None) is None:
            raise AriNotFound("DELETE", f"/recordings/stored/{name}", 404, "Recording not found")


@pytest.fixture
def index(engine: AsyncEngine) -> RecordingIndex:
    return RecordingIndex(sessionmaker(engine))


async def test_storing_again_after_a_crash_ends_in_the_same_file_and_row(index: RecordingIndex, tmp_path: Path) -> None:
    asterisk = FakeAsterisk()
    linked: list[tuple[str, list[str]]] = []

    async def link(call_id: str, refs) -> None:  # type: ignore[no-untyped-def]
        linked.append((call_id, [r.sha256 for r in refs]))

    store = RecordingStore(RecordingSettings(root=tmp_path / "store"), index, asterisk, link_tickets=link)
    call_id = str(uuid.uuid4())
    row = await index.begin(call_id=call_id, segment=1, agent_id="1001", jurisdiction="330100", fmt="wav")
    data = wav_bytes(1.5)
    asterisk.files[row.name] = data
    # A crash after the file was written, before the row said so: the file is there already.
    target = tmp_path / "store" / relative_path(row, store._zone)
    target.parent.mkdir(parents=True)
    target.write_bytes(data[:100])

    stored = await store.store(row.name)
    assert stored is not None and stored.state == "stored" and stored.duration_s == 1.5
    assert stored.sha256 == hashlib.sha256(data).hexdigest() and target.read_bytes() == data
    assert asterisk.files == {} and linked == [(call_id, [stored.sha256])]

    again = await store.store(row.name)  # the event delivered twice, or a crash before the delete
    assert again is not None and (again.state, again.sha256, again.path) == ("stored", stored.sha256, stored.path)
    assert asterisk.fetches == 1
    assert await index.begin(call_id=call_id, segment=1, agent_id="1001", jurisdiction="330100", fmt="wav") \
        is not None  # a replayed start finds its row
    assert len(await index.for_call(call_id)) == 1


async def test_a_fetched_file_that_is_not_a_wav_is_marked_failed_with_the_reason(index: RecordingIndex,
                                                                                tmp_path: Path) -> None:
    asterisk = FakeAsterisk()
    store = RecordingStore(RecordingSettings(root=tmp_path / "store"), index, asterisk)
    row = await index.begin(call_id=str(uuid.uuid4()), segment=1, agent_id=None, jurisdiction="000000", fmt="wav")
    asterisk.files[row.name] = wav_bytes(1.0)[:-10]
    failed = await store.store(row.name)
    assert failed is not None and failed.state == "failed" and "BadWav" in (failed.error or "")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.wav"))
    assert await store.store(f"{uuid.uuid4()}-1") is None  # not ours: left alone


async def test_a_file_with_a_header_and_no_audio_is_a_gap_not_a_recording(index: RecordingIndex,
                                                                          tmp_path: Path) -> None:
    """What a real Asterisk leaves of a conversation when it crashes under it: 44 bytes."""
    asterisk = FakeAsterisk()
    store = RecordingStore(RecordingSettings(root=tmp_path / "store"), index, asterisk)
    row = await index.begin(call_id=str(uuid.uuid4()), segment=1, agent_id="1001", jurisdiction="330100", fmt="wav")
    asterisk.files[row.name] = wav_bytes(0.0)
    assert len(asterisk.files[row.name]) == 44
    failed = await store.store(row.name)
    assert failed is not None and failed.state == "failed" and "no audio" in (failed.error or "")
