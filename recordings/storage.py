"""Taking a finished recording from Asterisk into our keeping.

For one finished recording: fetch the file (over ARI, so that Asterisk may run on another
host; or from its spool on a shared file system), read its WAV header (the duration), hash
it, write it atomically under ``<root>/<YYYY>/<MM>/<DD>/<jurisdiction>/<call>-<segment>.wav``,
read it back and compare the hash, mark the index row ``stored``, delete it from Asterisk,
update the call record's recording state and link it to the call's tickets.

Each step may be repeated: after a crash anywhere, storing the same name again ends in the
same file, the same row and no copy left in Asterisk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol
from zoneinfo import ZoneInfo

from ari.errors import AriError, AriUnavailable
from ari.rest import AriRest
from core.settings import RecordingSettings
from recordings.index import RecordingIndex
from recordings.models import Recording, RecordingState
from recordings.wav import BadWav, read_wav_info
from tickets.services import RecordingRef

log = logging.getLogger(__name__)

#: What may appear in a path component we make (jurisdiction codes, stations, call ids).
_SAFE_PART = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
#: Temporary files of atomic writes: ``.<name>.<pid>.tmp`` beside their target.
TMP_SUFFIX = ".tmp"
#: The longest a recording's download may take (an hour of WAV is 57 MB).
FETCH_TIMEOUT_S = 300.0
#: Pauses between tries of a fetch that found Asterisk unreachable.
FETCH_RETRIES_S = (0.5, 2.0, 5.0)

#: Called with the call id and its stored segments once one more is stored.
LinkTickets = Callable[[str, Sequence[RecordingRef]], Awaitable[object]]


class StorageError(RuntimeError):
    """A recording that could not be kept; the message says why."""


class RecordingSource(Protocol):
    async def fetch(self, name: str, fmt: str) -> bytes: ...
    async def delete(self, name: str) -> None: ...


class AriSource:
    """Files fetched with ``GET /recordings/stored/{name}/file``: Asterisk may be on another host."""

    def __init__(self, ari: AriRest, *, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._ari, self._timeout_s = ari, timeout_s

    async def fetch(self, name: str, fmt: str) -> bytes:
        return await self._ari.stored_recording_file(name, timeout_s=self._timeout_s)

    async def delete(self, name: str) -> None:
        await self._ari.delete_stored_recording(name)


class SpoolSource:
    """Files read from Asterisk's spool directory (same host or a shared file system);
    deleted over ARI all the same, so that Asterisk knows."""

    def __init__(self, spool_dir: Path, ari: AriRest) -> None:
        self._dir, self._ari = spool_dir, ari

    async def fetch(self, name: str, fmt: str) -> bytes:
        try:
            return await asyncio.to_thread((self._dir / f"{name}.{fmt}").read_bytes)
        except OSError as exc:
            raise StorageError(f"reading {name}.{fmt} from the spool {self._dir} failed: {exc.strerror}") from None

    async def delete(self, name: str) -> None:
        await self._ari.delete_stored_recording(name)


def relative_path(row: Recording, zone: ZoneInfo) -> str:
    """Where a segment's file lives under the root. Made only from our own values, each
    checked to be a plain name, so that no row can point outside the root."""
    day = row.created_at.astimezone(zone)
    for part in (row.jurisdiction, row.name):
        if not _SAFE_PART.fullmatch(part):
            raise StorageError(f"refusing to make a path from {part!r}")
    return f"{day:%Y}/{day:%m}/{day:%d}/{row.jurisdiction}/{row.name}.{row.format}"


def resolve(root: Path, relative: str) -> Path:
    """The absolute path of a stored file, or :class:`StorageError` when ``relative`` would
    leave the root (an absolute path, ``..``): a corrupted row must not open other files."""
    pure = PurePosixPath(relative)
    # We write normalised paths only: anything else (``a//b``, ``./a``, ``a/../b``) is not ours.
    if pure.is_absolute() or pure.as_posix() != relative or ".." in pure.parts or not relative:
        raise StorageError(f"the path {relative!r} is not inside the recordings root")
    path = (root / pure).resolve()
    if not path.is_relative_to(root.resolve()):
        raise StorageError(f"the path {relative!r} leaves the recordings root")
    return path


def write_atomically(target: Path, data: bytes) -> None:
    """Write, flush to disk, then rename into place: a reader (and a crash) sees the whole
    file or none. The directory is synced too, so that the rename survives a power loss."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}{TMP_SUFFIX}")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Shows a call's recording state on its record.
ShowCallState = Callable[[str], Awaitable[None]]


class RecordingStore:
    def __init__(self, settings: RecordingSettings, index: RecordingIndex, source: RecordingSource, *,
                 link_tickets: LinkTickets | None = None, show_call_state: ShowCallState | None = None) -> None:
        if settings.root is None:
            raise ValueError("the recordings root is not set (Settings fills it from var_dir)")
        self.root: Path = settings.root
        self._zone = ZoneInfo(settings.timezone)
        self._index, self._source, self._link = index, source, link_tickets
        #: How a call's record learns its recording state. The application hands it to the call
        #: records' writer, which orders it after the record itself (written behind the call);
        #: the commands, with no call being written, update the row directly.
        self._show_call_state = show_call_state or self._update_call_record

    async def store(self, name: str) -> Recording | None:
        """Keep the finished recording ``name``; the row as it ends (``stored`` or ``failed``),
        ``None`` for a recording that is not ours."""
        row = await self._index.by_name(name)
        if row is None:
            log.warning("recording %s finished but is not in the index: left in Asterisk", name)
            return None
        if row.state == RecordingState.PURGED:
            return row
        if row.state != RecordingState.STORED:
            try:
                row = await self._keep(row)
            except (StorageError, BadWav, AriError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.error("recording %s of call %s could not be stored: %s", name, row.call_id, reason)
                await self._index.failed(name, reason)
                await self.show_call_state(row.call_id)
                await self.settle_tickets(row.call_id)  # cases held for it go without it
                return await self._index.by_name(name)
        # Stored (now or before a crash): Asterisk's copy goes, the call and its tickets learn.
        await self._delete_from_asterisk(name)
        await self.show_call_state(row.call_id)
        await self.settle_tickets(row.call_id)
        return row

    async def show_call_state(self, call_id: str) -> None:
        """The call's record shows what its segments came to (recording, recorded, failed)."""
        await self._show_call_state(call_id)

    async def _update_call_record(self, call_id: str) -> None:
        if not await self._index.sync_call_state(call_id):
            log.warning("call %s: no call record to show its recording state on", call_id)

    async def settle_tickets(self, call_id: str) -> None:
        """The call's tickets learn its stored recordings; cases held for them are let go."""
        if self._link is not None:
            await self._link(call_id, await self._index.refs_for_call(call_id))

    async def _keep(self, row: Recording) -> Recording:
        data = await self._fetch(row)
        info = read_wav_info(data)
        if info.data_bytes == 0:
            # A header and nothing else: Asterisk stopped before writing any audio (seen when it
            # crashed under a conversation). Kept as "stored" it would hide a gap in the record.
            raise BadWav("the file holds no audio at all (did Asterisk stop or crash while recording?)")
        sha256 = hashlib.sha256(data).hexdigest()
        relative = relative_path(row, self._zone)
        target = resolve(self.root, relative)
        await asyncio.to_thread(write_atomically, target, data)
        # Read back what the disk holds: a write that lied is found now, not at a dispute.
        on_disk = await asyncio.to_thread(file_sha256, target)
        if on_disk != sha256:
            raise StorageError(f"the file written to {relative} does not read back the same (sha256 {on_disk}, "
                               f"{sha256} fetched)")
        stored = await self._index.stored(row.name, path=relative, sha256=sha256, size=len(data),
                                          duration_s=info.duration_s)
        log.info("recording %s stored: %s, %.1f s, %d bytes", row.name, relative, info.duration_s, len(data))
        return stored or row

    async def _fetch(self, row: Recording) -> bytes:
        """The file's bytes; Asterisk busy or restarting is tried again a few times first."""
        for delay in FETCH_RETRIES_S:
            try:
                return await self._source.fetch(row.name, row.format)
            except AriUnavailable as exc:
                log.warning("fetching recording %s failed (%s); trying again in %.1f s", row.name, exc, delay)
                await asyncio.sleep(delay)
        return await self._source.fetch(row.name, row.format)

    async def _delete_from_asterisk(self, name: str) -> None:
        try:
            await self._source.delete(name)
        except AriError as exc:
            if exc.status != 404:  # already gone: deleted before a crash
                log.warning("recording %s is stored but could not be deleted from Asterisk: %s", name, exc)

    def path_of(self, row: Recording) -> Path:
        if row.path is None:
            raise StorageError(f"recording {row.id} has no file")
        return resolve(self.root, row.path)
