"""Writing and reading call records.

The call path never waits for SQL: flows hand the writer a full snapshot of the
record (an upsert, so writing it twice is harmless) and a background task commits
the latest snapshot of each call in batches. If the process dies before a batch is
committed, the live call state in Redis still holds the snapshot and the
resynchronization after restart writes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callrecords.models import CallRecord, snapshot_columns
from core.db import Transactions, dialect_insert, table_of
from core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: What runs on the event loop once a batch has committed (waking the outbox's workers).
AfterCommit = Callable[[], None]
#: Runs in the transaction that writes a batch of records, on the database's thread (see
#: core.db.Transactions): it must not touch the event loop, and says what to do after commit.
AfterWrite = Callable[[Connection, list[dict[str, Any]]], AfterCommit | None]


def upsert_statement(dialect: str) -> sqlite.Insert | postgresql.Insert:
    """One upsert of a full call record, built once and run with many rows (executemany):
    SQLAlchemy compiles it once, where a multi-row VALUES would be compiled per batch."""
    stmt = dialect_insert(dialect, table_of(CallRecord))
    # Columns other features keep (the recording state) are never overwritten by a snapshot.
    updates = {c.name: stmt.excluded[c.name] for c in snapshot_columns() if c.name != "call_id"}
    return stmt.on_conflict_do_update(index_elements=["call_id"], set_=updates)


def refused_data(exc: BaseException) -> bool:
    """True when the database refused the *values* (too long, a constraint, a naive time):
    retrying the same row would fail for ever. Anything else (connection, missing table)
    may pass on a later try."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    # Raised while binding parameters, before the database saw anything.
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


#: How long the writer gathers snapshots before it commits them. A call saves one at every
#: transition, seconds apart: half a second gathers those of many calls into one transaction,
#: and often several of one call into one row (at 50 ms, nearly every snapshot was a transaction
#: of its own: 1.3 to 2.5 per call and a fifth of the app's CPU, bench/ivr.py). Meanwhile the live
#: state is in Redis, this process reads the record through the writer (CallRecordRepository),
#: and :meth:`CallRecordWriter.flush` does not wait the pause out. ``hotline serve`` takes it
#: from ``[callrecords] batch_delay_s`` (4 s there: at a quiet hour most calls' ends were a
#: transaction each at half a second, issue 15).
BATCH_DELAY_S = 0.5
#: How long a live call's snapshot may wait to be written: the later transitions of the call
#: replace it meanwhile, and the last one, the call's end, goes with the next batch. A call's
#: menu, queue and answer came as three or four writes before its final one: a sixth of the
#: app's CPU per call on the real switch (issue 15). Nothing needs them sooner: the desktops
#: read a live call's state in Redis, this process reads through the writer, and after a crash
#: the resynchronization writes what Redis holds.
LIVE_HOLD_S = 5.0
#: A batch also takes the live snapshots whose hold ends within this share of ``live_hold_s``:
#: written a little early, they ride in a transaction that is committed anyway instead of
#: making one of their own a moment later. At one call a second on the real switch a call's
#: live snapshot was a transaction of its own beside its end's (issue 15: a transaction found
#: cold is about 1 ms of CPU, a row in one about a tenth of that).
RIDE_SHARE = 0.5


class CallRecordWriter:
    """Write-behind of call-record snapshots, coalesced per call and committed in batches."""

    def __init__(self, engine: AsyncEngine, *, batch_delay_s: float = BATCH_DELAY_S, max_batch: int = 500,
                 after_write: AfterWrite | None = None, live_hold_s: float = LIVE_HOLD_S) -> None:
        self._transactions = Transactions(engine)
        #: Runs in each batch's transaction (the platform feed queues ended calls there).
        self._after_write = after_write
        self._upsert = upsert_statement(engine.dialect.name)
        self._delay = batch_delay_s
        self._max_batch = max_batch
        self._pending: dict[str, dict[str, Any]] = {}
        self._live_hold = live_hold_s
        #: Calls whose pending snapshot is of a live call, and the loop time it waits until.
        self._held_until: dict[str, float] = {}
        #: The batch being committed now, by call: neither pending nor in the database yet.
        self._writing: dict[str, dict[str, Any]] = {}
        #: Columns other features keep on a call's record (its recording state), by call.
        self._amends: dict[str, dict[str, Any]] = {}
        self._wakeup = asyncio.Event()
        #: The loop time the writer sleeps until (the earliest held snapshot's), None when it
        #: is not asleep or sleeps until woken: a later hold need not wake it.
        self._asleep_until: float | None = None
        #: Set by flush(): write what is pending now, without the batching pause.
        self._now = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.batches_written = 0
        #: Records the database refused (invalid data): never retried, never silently lost.
        self.rejected: dict[str, dict[str, Any]] = {}
        #: What to run once a call's record, as saved so far, is committed (when_written).
        self._on_written: dict[str, list[Callable[[], None]]] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="call-record-writer")

    def save(self, snapshot: dict[str, Any]) -> None:
        """Queue the full record of one call; a later snapshot of the same call replaces it.
        A live call's snapshot waits up to ``live_hold_s`` (from the first one not written yet),
        an ended call's goes with the next batch."""
        call_id = snapshot["call_id"]
        self._pending[call_id] = snapshot
        self._idle.clear()
        if snapshot.get("ended_at") is None and self._live_hold > 0:
            if call_id in self._held_until:
                return  # its time is set: the writer wakes for it, or for one before it
            due = asyncio.get_running_loop().time() + self._live_hold
            self._held_until[call_id] = due
            if self._asleep_until is not None and self._asleep_until <= due:
                # A call makes four or five live snapshots: waking the writer for each only
                # to find nothing due was a task switch and a new timer every time.
                return
        else:
            self._held_until.pop(call_id, None)
        self._wakeup.set()

    def when_written(self, call_id: str, then: Callable[[], None]) -> None:
        """Run ``then`` once the call's record, as saved so far, is committed (or set aside as
        refused); at once when nothing of it waits. The call core deletes an ended call's live
        state then: until its end is in the database, Redis keeps what a restart needs."""
        if call_id not in self._pending and call_id not in self._writing:
            then()
            return
        self._on_written.setdefault(call_id, []).append(then)

    def _written(self, call_ids: list[str]) -> None:
        for call_id in call_ids:
            if call_id in self._pending:
                continue  # a later snapshot waits: its commit runs them
            for then in self._on_written.pop(call_id, ()):
                try:
                    then()
                except Exception:  # one caller's mistake must not stop the writer
                    log.exception("after writing call record %s", call_id)

    def unwritten(self, call_id: str) -> dict[str, Any]:
        """The call's columns saved or amended here and not committed yet (empty when none):
        what this process knows of the record beyond the database, for reading its own writes."""
        return {**self._writing.get(call_id, {}), **self._pending.get(call_id, {}), **self._amends.get(call_id, {})}

    def amend(self, call_id: str, **columns: Any) -> None:
        """Set columns another feature keeps on a call's record (the recordings set its
        recording state). Written after every snapshot of the call queued before, in the same
        or a later transaction: the caller never waits for the record to exist."""
        self._amends.setdefault(call_id, {}).update(columns)
        self._idle.clear()
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            held = min(self._held_until.values(), default=None)
            self._asleep_until = held
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), None if held is None else max(0.0, held - loop.time()))
            finally:
                self._asleep_until = None
            self._wakeup.clear()
            if self._ready(loop.time()) and not self._now.is_set():
                # A pause gathers the snapshots of many calls into one transaction.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), self._delay)
            everything = self._now.is_set()
            self._now.clear()
            await self._flush_pending(everything=everything)

    def _ready(self, now: float, everything: bool = False) -> list[str]:
        """Calls whose pending snapshot may be written at ``now`` (a held one: its hold is over)."""
        return [cid for cid in self._pending if everything or self._held_until.get(cid, now) <= now]

    async def _flush_pending(self, *, everything: bool = True) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch_ids = self._ready(loop.time() + self._live_hold * RIDE_SHARE, everything)[: self._max_batch]
            if not batch_ids and not any(cid not in self._pending for cid in self._amends):
                break
            for cid in batch_ids:
                self._held_until.pop(cid, None)
            rows = [self._pending.pop(cid) for cid in batch_ids]
            # An amend waits while its call's snapshot is still queued behind this batch.
            amends = {cid: self._amends.pop(cid) for cid in list(self._amends) if cid not in self._pending}
            self._writing = {**amends, **{cid: {**row, **amends.get(cid, {})}
                                          for cid, row in zip(batch_ids, rows, strict=True)}}
            try:
                await self._write(rows, amends)
            except Exception as exc:
                if refused_data(exc):
                    # The database refused a value in the batch: find the rows it refuses,
                    # so that one bad record never holds back everybody else's.
                    log.warning("a batch of %d call record(s) was refused (%s); writing one by one",
                                len(rows), type(exc).__name__)
                    await self._write_one_by_one(rows)
                    self._requeue_amends(amends)
                    self._written(batch_ids)
                    continue
                # Unreachable, restarting, table being migrated: keep the rows (unless newer
                # snapshots arrived meanwhile) and retry; a hiccup must not lose records.
                log.exception("writing %d call record(s) failed; will retry", len(rows))
                self._requeue(rows)
                self._requeue_amends(amends)
                self._writing = {}
                await asyncio.sleep(1.0)
            else:
                self._written(batch_ids)
            finally:
                self._writing = {}
        if not self._pending and not self._amends:
            self._idle.set()

    async def _write(self, rows: list[dict[str, Any]], amends: dict[str, dict[str, Any]] | None = None) -> None:
        after = await self._transactions.run(lambda conn: self._write_in(conn, rows, amends or {}))
        self.batches_written += 1
        if after is not None:
            after()

    def _write_in(self, conn: Connection, rows: list[dict[str, Any]],
                  amends: dict[str, dict[str, Any]]) -> AfterCommit | None:
        """The batch's transaction, on the database's thread: nothing here touches the loop."""
        after = None
        if rows:
            conn.execute(self._upsert, rows)
            if self._after_write is not None:
                after = self._after_write(conn, rows)
        for call_id, columns in amends.items():
            result = conn.execute(update(CallRecord).where(CallRecord.call_id == call_id).values(**columns))
            if not result.rowcount:
                log.warning("call %s has no record to set %s on", call_id, ", ".join(sorted(columns)))
        return after

    async def _write_one_by_one(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            try:
                await self._write([row])
            except Exception as exc:  # noqa: BLE001 - refused rows are set aside, anything else retried (logged then)
                if not refused_data(exc):
                    self._requeue([row])
                    continue
                # Kept in memory, out of the write path: an operator can see them here and
                # in the log; retrying would only fail again.
                self.rejected[row["call_id"]] = row
                log.error("call record %s refused by the database: %s", row["call_id"], exc)

    def _requeue(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._pending.setdefault(row["call_id"], row)

    def _requeue_amends(self, amends: dict[str, dict[str, Any]]) -> None:
        for call_id, columns in amends.items():
            # What was amended meanwhile is newer than what failed.
            self._amends[call_id] = {**columns, **self._amends.get(call_id, {})}

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything saved so far is committed (at once: no batching pause)."""
        if not self._idle.is_set():
            self._now.set()
            self._wakeup.set()  # the loop may be waiting for a held snapshot's time
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            if self._task is not None:
                await cancel_and_wait([self._task], what="the call-record writer")
            await self._transactions.close()


class CallRecordRepository:
    """Queries on call records (used by resync, tests, the desktop and the delivery).

    ``unwritten``: what this process's writer holds of a call and has not committed yet
    (:meth:`CallRecordWriter.unwritten`); :meth:`get` reads it over the database's row, so that
    the desktop sees a call's record the moment the call saved it, whatever the writer's pause.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 unwritten: Callable[[str], dict[str, Any]] | None = None) -> None:
        self._sessions = sessions
        self._unwritten = unwritten

    async def get(self, call_id: str) -> CallRecord | None:
        async with self._sessions() as session:
            record = await session.get(CallRecord, call_id)
        columns = self._unwritten(call_id) if self._unwritten is not None else {}
        if not columns:
            return record
        if record is None:
            # Only amended, never saved here: nothing to show until its snapshot comes.
            return CallRecord(**columns) if "started_at" in columns else None
        for name, value in columns.items():  # a detached copy: nothing goes back to the database
            setattr(record, name, value)
        return record

    async def by_channel(self, channel_id: str) -> CallRecord | None:
        async with self._sessions() as session:
            result = await session.execute(
                select(CallRecord).where(CallRecord.channel_id == channel_id).order_by(CallRecord.started_at.desc())
            )
            return result.scalars().first()

    async def open_records(self) -> list[CallRecord]:
        """Records of calls that have not ended (for sweeping after a crash)."""
        async with self._sessions() as session:
            result = await session.execute(select(CallRecord).where(CallRecord.ended_at.is_(None)))
            return list(result.scalars())

    async def all(self) -> list[CallRecord]:
        async with self._sessions() as session:
            result = await session.execute(select(CallRecord).order_by(CallRecord.started_at))
            return list(result.scalars())
