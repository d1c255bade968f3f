"""Importing Asterisk's CDR file into call records, once each, and on to the platform.

``hotline serve`` follows the file (``[callrecords] cdr_file``) with :meth:`CdrImporter.run`;
``hotline callrecords import-cdr FILE`` reads one file through with
:meth:`CdrImporter.import_file`. Either way each batch of lines is one transaction: the new
call records, their platform call records in the outbox (the same feed as every other call
record: ``delivery/feeds.py``) and, when following the file, the offset reached. A crash
therefore never skips a line nor imports one twice, and a call already imported (the file
read again, a rotated copy imported by hand) is recognised by its id, derived from
Asterisk's uniqueid, and skipped.

The file is only ever appended to by Asterisk, which opens it for each line. A rotation
(logrotate renaming it) is noticed because the configured path then starts with another first
line; the renamed file is found beside it by its first line and finished before the new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import UpdateBase

from callrecords.cdr import CdrCall, CdrLine, CdrLineError, RawRecord, complete_records, parse_record
from callrecords.models import CallRecord, CdrImportState
from callrecords.services import AfterCommit, AfterWrite
from core.db import dialect_insert, table_of
from core.privacy import mask_phone
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: Maps agents' endpoints (``PJSIP/1001``) to agent ids, in the import's transaction.
AgentLookup = Callable[[AsyncConnection, set[str]], Awaitable[dict[str, str]]]
#: Told after each batch: the totals so far, the bytes of the file read, its size.
Progress = Callable[["ImportStats", int, int], None]

#: How much of the file one batch reads (a few thousand CDR lines).
CHUNK_BYTES = 1 << 20
#: Rotated files end in their date or a number; compressed ones cannot be read back.
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


async def agents_from_accounts(conn: AsyncConnection, endpoints: set[str]) -> dict[str, str]:
    """The agent id of each endpoint, from the agents' accounts (``hotline users``)."""
    if not endpoints:
        return {}
    from accounts.models import User  # the accounts feature's table, read only

    rows = await conn.execute(select(User.sip_endpoint, User.agent_id)
                              .where(User.sip_endpoint.in_(sorted(endpoints)), User.agent_id.is_not(None)))
    return {endpoint: agent for endpoint, agent in rows if endpoint and agent}


@dataclass
class ImportStats:
    """What an import found and did."""

    lines: int = 0
    #: Lines of calls our dialplan served itself (the rest are calls the application saw).
    marked_lines: int = 0
    #: Lines not of our layout, or unreadable: named in the log with their offset.
    skipped_lines: int = 0
    imported: int = 0
    #: Of the imported calls, those queued for the national platform.
    for_platform: int = 0
    #: Calls imported before (the same lines read again): left as they are.
    already_imported: int = 0
    #: Calls at the end of a file Asterisk may still be writing: imported on a later read.
    held_back: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, other: ImportStats) -> None:
        for name in ("lines", "marked_lines", "skipped_lines", "imported", "for_platform", "already_imported"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.held_back = other.held_back  # only the last batch's tail is still held
        self.outcomes.update(other.outcomes)

    def summary(self) -> str:
        parts = [f"{self.lines} line(s) read, {self.marked_lines} of calls served without the application",
                 f"{self.imported} call(s) imported ({self.for_platform} for the national platform)",
                 f"{self.already_imported} already imported"]
        if self.held_back:
            parts.append(f"{self.held_back} at the end of the file still being written (imported later)")
        if self.skipped_lines:
            parts.append(f"{self.skipped_lines} line(s) skipped (not of our layout, see the log)")
        text = "; ".join(parts)
        if self.outcomes:
            text += "\noutcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return text


@dataclass(frozen=True)
class _Position:
    """Where the import of the configured file stands (the ``cdr_imports`` row)."""

    first_line: str
    offset: int


class _Raced(Exception):
    """Another importer moved the position meanwhile: this batch is dropped, nothing written."""


@dataclass(frozen=True)
class _Read:
    data: bytes
    size: int
    mtime: float


def _read(path: Path, offset: int, limit: int) -> _Read:
    with path.open("rb") as f:
        st = os.fstat(f.fileno())
        f.seek(offset)
        return _Read(f.read(limit), st.st_size, st.st_mtime)


def _first_line_sha(path: Path) -> str | None:
    """SHA-256 of the file's first complete line; None while it has none (or is missing)."""
    try:
        with path.open("rb") as f:
            head = f.read(64 * 1024)
    except FileNotFoundError:
        return None
    first = next(complete_records(head), None)
    return hashlib.sha256(first.text.encode()).hexdigest() if first else None


def _find_rotated(path: Path, first_line: str) -> Path | None:
    """The file beside ``path`` (``hotline-cdr.csv.1``, ``hotline-cdr.csv-20261205``) that
    starts with ``first_line``: where the file we were reading went."""
    for candidate in sorted(path.parent.glob(path.name + "?*")):
        if candidate.suffix in _COMPRESSED or not candidate.is_file():
            continue
        if _first_line_sha(candidate) == first_line:
            return candidate
    return None


def _insert_new(dialect: str) -> sqlite.Insert | postgresql.Insert:
    # A record already there (another importer raced us to it) stays as it is.
    return dialect_insert(dialect, table_of(CallRecord)).on_conflict_do_nothing(index_elements=["call_id"])


class CdrImporter:
    """Imports the marked CDRs of a file (see :mod:`callrecords.cdr`) as call records."""

    def __init__(self, engine: AsyncEngine, *, after_write: AfterWrite | None = None,
                 agents: AgentLookup | None = None, settle_s: float = 3.0, chunk_bytes: int = CHUNK_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        #: Queues the platform's call records in the import's transaction (CallRecordFeed).
        self._after_write = after_write
        self._agents = agents
        self._settle_s = settle_s
        self._chunk = chunk_bytes
        self._clock = clock
        self._insert = _insert_new(engine.dialect.name)
        self._task: asyncio.Task[None] | None = None
        #: Totals since this importer started (the background task's).
        self.totals = ImportStats()

    # ----------------------------------------------------------------- entry points

    async def import_file(self, path: Path, *, progress: Progress | None = None) -> ImportStats:
        """Read ``path`` through from its start (a one-shot import; no position is kept)."""
        stats = ImportStats()
        offset = 0
        while True:
            offset, batch, more = await self._batch(path, offset, position=None, key=None, final=False)
            stats.add(batch)
            if progress is not None:
                progress(stats, offset, (await asyncio.to_thread(os.stat, path)).st_size)
            if not more:
                return stats

    async def poll(self, path: Path) -> ImportStats:
        """Import what Asterisk added to ``path`` since the last call (the position is kept
        in the database, so a restarted process goes on where this one stopped)."""
        stats = ImportStats()
        try:
            await self._follow(path, stats)
        except _Raced:
            log.info("CDR file %s: another importer is ahead of this one; this round stops", path)
        return stats

    async def _follow(self, path: Path, stats: ImportStats) -> None:
        key = str(path)
        position = await self._load(key)
        current = await asyncio.to_thread(_first_line_sha, path)
        if position is not None and current != position.first_line:
            # The file we were reading was rotated: finish it, wherever it went.
            rotated = await asyncio.to_thread(_find_rotated, path, position.first_line)
            if rotated is not None:
                log.info("CDR file %s was rotated to %s: finishing it from byte %d", path, rotated.name,
                         position.offset)
                position = await self._drain(rotated, key, position, stats, final=True)
            else:
                log.warning("CDR file %s was replaced and the old one is not beside it (compressed or "
                            "removed?): lines written to it after byte %d may be missing; import them with "
                            "`hotline callrecords import-cdr <old file>`", path, position.offset)
            if current is None:
                return  # the new file has no complete line yet
            position = await self._restart(key, position, current)
        elif current is None:
            return  # no file yet: Asterisk creates it with the first CDR
        elif position is None:
            position = await self._restart(key, None, current)
        await self._drain(path, key, position, stats, final=False)

    def start(self, path: Path, poll_s: float) -> None:
        """Follow ``path`` in the background (``hotline serve``)."""
        self._task = asyncio.get_running_loop().create_task(self.run(path, poll_s), name="cdr-import")

    async def run(self, path: Path, poll_s: float) -> None:
        log.info("importing Asterisk's CDRs of calls served without us from %s", path)
        missing_told = False
        while True:
            try:
                if not await asyncio.to_thread(path.exists):
                    if not missing_told:
                        log.info("no CDR file at %s yet (Asterisk writes it with its first CDR)", path)
                        missing_told = True
                else:
                    missing_told = False
                batch = await self.poll(path)
                self.totals.add(batch)
                if batch.imported:
                    log.info("CDR import: %d call(s) served without the application imported", batch.imported)
            except Exception:
                log.exception("importing CDRs from %s failed; trying again", path)
            await asyncio.sleep(poll_s)

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task], what="the CDR import")
            self._task = None

    # ----------------------------------------------------------------- position

    async def _load(self, key: str) -> _Position | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(CdrImportState.first_line, CdrImportState.byte_offset)
                                      .where(CdrImportState.path == key))).first()
        return _Position(row.first_line, row.byte_offset) if row else None

    async def _restart(self, key: str, old: _Position | None, first_line: str) -> _Position:
        """Start the file that now starts with ``first_line`` from its beginning."""
        new = _Position(first_line, 0)
        async with self._engine.begin() as conn:
            await self._move(conn, key, old, new)
        return new

    async def _move(self, conn: AsyncConnection, key: str, old: _Position | None, new: _Position) -> None:
        """Move the position from ``old`` to ``new`` only if nobody moved it meanwhile."""
        now = datetime.now(UTC)
        stmt: UpdateBase
        if old is None:
            # The dialect was checked when the importer was made (_insert_new).
            insert = dialect_insert(self._engine.dialect.name, table_of(CdrImportState))
            stmt = insert.values(path=key, first_line=new.first_line, byte_offset=new.offset,
                                 updated_at=now).on_conflict_do_nothing(index_elements=["path"])
        else:
            stmt = (update(CdrImportState)
                    .where(CdrImportState.path == key, CdrImportState.first_line == old.first_line,
                           CdrImportState.byte_offset == old.offset)
                    .values(first_line=new.first_line, byte_offset=new.offset, updated_at=now))
        if (await conn.execute(stmt)).rowcount != 1:
            raise _Raced(key)

    async def _drain(self, path: Path, key: str, position: _Position, stats: ImportStats, *,
                     final: bool) -> _Position:
        """Import ``path`` from the position to its end, a batch at a time."""
        size = (await asyncio.to_thread(os.stat, path)).st_size
        if size < position.offset:
            log.warning("CDR file %s is shorter (%d bytes) than what was imported of it (%d): read again "
                        "from its start (calls already imported are skipped)", path, size, position.offset)
            position = await self._restart(key, position, position.first_line)
        offset = position.offset
        while True:
            offset, batch, more = await self._batch(path, offset, position=position, key=key, final=final)
            stats.add(batch)
            position = _Position(position.first_line, offset)
            if not more:
                return position

    # ----------------------------------------------------------------- one batch

    async def _batch(self, path: Path, offset: int, *, position: _Position | None, key: str | None,
                     final: bool) -> tuple[int, ImportStats, bool]:
        """Import the complete lines from ``offset`` (up to a chunk); returns the offset after
        the last line imported, what was done, and whether more of the file waits."""
        limit = self._chunk
        while True:
            read = await asyncio.to_thread(_read, path, offset, limit)
            records = list(complete_records(read.data, offset))
            at_end = offset + len(read.data) >= read.size
            keep, held = self._split_tail(records, at_end=at_end, mtime=read.mtime, final=final)
            if keep or held == 0 or not records:
                break
            if at_end:
                break  # only an unfinished call at the end: wait for it
            limit *= 2  # one call's lines fill the whole chunk: read more at once
        stats = ImportStats(held_back=1 if held else 0)
        new_offset = keep[-1].end if keep else offset
        calls = self._calls(keep, stats)
        if new_offset == offset and not calls:
            return offset, stats, False
        async with self._engine.begin() as conn:
            if key is not None:
                assert position is not None
                await self._move(conn, key, position, _Position(position.first_line, new_offset))
            after = await self._write(conn, calls, stats)
        if after is not None:
            after()
        # Past the chunk there is more to read; at the end, a held-back call waits for next time.
        more = not at_end or (held == 0 and new_offset < read.size)
        return new_offset, stats, more

    def _split_tail(self, records: list[RawRecord], *, at_end: bool, mtime: float,
                    final: bool) -> tuple[list[RawRecord], int]:
        """Hold back the last call's lines unless they are surely all there.

        Asterisk writes a call's CDRs one after another when it ends: the lines of the call
        at the end of what we read may be incomplete if the chunk ended there, or if the file
        changed a moment ago. A rotated (final) file, or one still for ``settle_s``, is whole.
        """
        if not records or (at_end and (final or self._clock() - mtime >= self._settle_s)):
            return records, 0
        last_id = _uniqueid(records[-1].text)
        if last_id is None:
            return records, 0
        cut = len(records)
        while cut > 0 and _uniqueid(records[cut - 1].text) == last_id:
            cut -= 1
        return records[:cut], len(records) - cut

    def _calls(self, records: list[RawRecord], stats: ImportStats) -> list[CdrCall]:
        """The marked calls among ``records``, their lines grouped by the caller's uniqueid."""
        by_call: dict[str, list[CdrLine]] = {}
        for record in records:
            stats.lines += 1
            if not record.text.strip():
                continue
            try:
                line = CdrLine.parse(parse_record(record.text))
            except CdrLineError as exc:
                stats.skipped_lines += 1
                log.warning("CDR line at byte %d skipped: %s", record.start, exc)
                continue
            if line.marked:
                stats.marked_lines += 1
                by_call.setdefault(line.uniqueid, []).append(line)
        return [CdrCall(tuple(lines)) for lines in by_call.values()]

    async def _write(self, conn: AsyncConnection, calls: list[CdrCall], stats: ImportStats) -> AfterCommit | None:
        """Insert the calls not imported yet; returns what to do once the transaction commits."""
        if not calls:
            return None
        ids = [c.call_id for c in calls]
        existing = set((await conn.execute(select(CallRecord.call_id).where(CallRecord.call_id.in_(ids)))).scalars())
        fresh = [c for c in calls if c.call_id not in existing]
        stats.already_imported += len(calls) - len(fresh)
        endpoints = {e for c in fresh if (e := c.answering_agent())}
        agents = await self._agents(conn, endpoints) if self._agents is not None and endpoints else {}
        rows: list[dict[str, Any]] = []
        deliver: list[dict[str, Any]] = []
        for call in fresh:
            try:
                row = call.record(agents)
            except CdrLineError as exc:
                stats.skipped_lines += len(call.lines)
                log.error("CDRs of call %s skipped: %s", call.uniqueid, exc)
                continue
            rows.append(row)
            if call.deliverable:
                deliver.append(row)
            stats.outcomes[row["outcome"]] += 1
            log.info("call %s (Asterisk %s) from %s on %s served without the application: %s, %s",
                     row["call_id"], call.uniqueid, mask_phone(row["caller_phone"] or ""), row["hotline_number"],
                     row["outcome"], row["hangup_cause"])
        if rows:
            await conn.execute(self._insert, rows)
        stats.imported += len(rows)
        stats.for_platform += len(deliver)
        if deliver and self._after_write is not None:
            return await conn.run_sync(self._after_write, deliver)
        return None


def _uniqueid(text: str) -> str | None:
    try:
        fields = parse_record(text)
    except CdrLineError:
        return None
    return fields[1] if len(fields) > 1 else None
