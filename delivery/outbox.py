"""The outbox: writing rows in the caller's transaction, claiming them for a worker, settling
what the platform answered, and the operator's view (list, retry, replay).

Claiming leases rows instead of deleting or moving them: a worker that is killed mid-send
leaves leased rows behind, and they become claimable again when the lease runs out. The
platform's idempotency turns that second send into a replay, so the document is still
recorded there exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, event, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from core.db import dialect_insert, rows_matched, table_of
from core.vocabulary import utcnow
from delivery.models import Kind, OutboxRow, State

log = logging.getLogger(__name__)

TABLE = table_of(OutboxRow)



def encode(body: dict[str, Any]) -> str:
    """The frozen text of a document: compact UTF-8 JSON, exactly what the client sends."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One row leased to a worker, with what it needs to send it."""

    id: int
    kind: Kind
    key: str
    ticket_id: str | None
    body: str
    attempts: int
    #: For a progress step: the platform's number of the case it belongs to.
    platform_case_no: str | None = None
    #: What the platform answered to the previous attempt (``None``: nothing, or not sent).
    last_status: int | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of one claimed row after one attempt."""

    row: Claimed
    state: State
    status: int | None = None
    error: str | None = None
    receipt: dict[str, Any] | None = None
    problems: list[dict[str, Any]] | None = None
    #: When to try again (state pending only).
    retry_at: datetime | None = None
    #: The attempt does not count towards ``max_attempts``: the row was not sent (the
    #: platform asked every sender to wait) or its refusal was not about it (a halt).
    refund: bool = False


#: Called inside the settling transaction, so a ticket's delivery state and its outbox row
#: change together.
SettleHook = Callable[[AsyncConnection, Sequence[Settled]], Any]


@dataclass
class Outbox:
    """Rows of the ``outbox`` table, on one engine."""

    engine: AsyncEngine
    clock: Callable[[], datetime] = utcnow
    hooks: list[SettleHook] = field(default_factory=list)
    #: Set after a commit that added rows, so in-process workers start at once.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    #: The insert, built once: SQLAlchemy's cache key of an upsert with its conflict clause
    #: is computed from the statement object (about 2 ms per call record when built anew).
    _insert_stmt: sqlite.Insert | postgresql.Insert | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------- writing

    async def enqueue(self, session: AsyncSession, *, kind: str, key: str, body: dict[str, Any],
                      ticket_id: str | None = None, held: bool = False) -> bool:
        """Add a row to ``session``'s transaction; it is sent only if that commits (and, when
        ``held``, once :meth:`release` lets it go). ``False`` when nothing was queued: a row
        with this key is pending, held or delivered already (see :func:`insert_statement`),
        which a caller sending a *changed* document must not take for success."""
        row = self._row(Kind(kind), key, body, ticket_id)
        if held:
            row["state"] = State.HELD.value
        # One row, not a list: an executemany's row count is not reliable on every driver.
        result = await session.execute(self._insert(), row)
        self._wake_after_commit(session)
        return bool(rows_matched(result))

    async def held_keys(self, session: AsyncSession, *, kind: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are held (in ``session``'s transaction, locked where the database can)."""
        wanted = list(keys)
        if not wanted:
            return set()
        result = await session.execute(
            select(OutboxRow.key).where(OutboxRow.kind == Kind(kind).value, OutboxRow.key.in_(wanted),
                                        OutboxRow.state == State.HELD.value).with_for_update())
        return set(result.scalars())

    async def release_held(self, session: AsyncSession, *, kind: str, key: str,
                           body: dict[str, Any] | None = None) -> bool:
        """Let a held row go, with its final body when given; False when it was not held."""
        values: dict[str, Any] = {"state": State.PENDING.value, "next_attempt_at": self.clock()}
        if body is not None:
            values["body"] = encode(body)
        result = await session.execute(
            update(OutboxRow).where(OutboxRow.kind == Kind(kind).value, OutboxRow.key == key,
                                    OutboxRow.state == State.HELD.value).values(**values))
        self._wake_after_commit(session)
        return bool(rows_matched(result))

    async def release_stale(self, older_than_s: float) -> int:
        """Held rows waited long enough (a recording that never finished): sent as they are."""
        cutoff = self.clock() - timedelta(seconds=older_than_s)
        stmt = (update(OutboxRow).where(OutboxRow.state == State.HELD.value, OutboxRow.created_at < cutoff)
                .values(state=State.PENDING.value, next_attempt_at=self.clock()))
        async with self.engine.begin() as conn:
            count = int((await conn.execute(stmt)).rowcount or 0)
        if count:
            log.warning("%d held row(s) released after %.0f s without their recording", count, older_than_s)
            self.wakeup.set()
        return count

    def enqueue_many(self, conn: Connection,
                     rows: Iterable[tuple[str, str, dict[str, Any], list[dict[str, Any]] | None]]) -> bool:
        """Rows ``(kind, key, body, problems)`` in the transaction of ``conn`` (a synchronous
        one: see :class:`core.db.Transactions`); a row with problems is queued dead. A key
        already queued is left as it is (a call record saved again is the same record).
        True when rows were queued: call :meth:`wake` once the transaction has committed."""
        values = [self._row(Kind(kind), key, body, None, problems) for kind, key, body, problems in rows]
        if values:
            conn.execute(self._insert(), values)
        return bool(values)

    def wake(self) -> None:
        """Rows were committed: in-process workers look at once (on the event loop's thread)."""
        self.wakeup.set()

    def _row(self, kind: Kind, key: str, body: dict[str, Any], ticket_id: str | None,
             problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        now = self.clock()
        state = State.DEAD if problems else State.PENDING
        return {"kind": kind.value, "key": key, "ticket_id": ticket_id, "body": encode(body),
                "state": state.value, "attempts": 0, "next_attempt_at": now, "created_at": now,
                "problems": problems, "last_error": "breaks the platform's rules" if problems else None}

    def _insert(self) -> sqlite.Insert | postgresql.Insert:
        if self._insert_stmt is None:
            self._insert_stmt = insert_statement(self.engine.dialect.name)
        return self._insert_stmt

    def _wake_after_commit(self, session: AsyncSession) -> None:
        sync = session.sync_session
        if not event.contains(sync, "after_commit", self._on_commit):
            event.listen(sync, "after_commit", self._on_commit, once=True)

    def _on_commit(self, _target: Any) -> None:
        self.wake()

    # ----------------------------------------------------------------- claiming

    async def claim(self, worker: str, limit: int, lease_s: float, *, early: bool = False) -> list[Claimed]:
        """Lease up to ``limit`` due rows to ``worker``. A row waits while an earlier row of the
        same ticket is undelivered: the platform must see the case before its steps, in order.
        On PostgreSQL, ``SKIP LOCKED`` lets several workers claim at once without waiting on or
        taking each other's rows; SQLite serialises writers, which gives the same guarantee.
        ``early`` takes rows before their retry time (a probe of whether the platform is back)."""
        now = self.clock()
        earlier = aliased(OutboxRow)
        blocked = exists().where(
            earlier.ticket_id == OutboxRow.ticket_id, earlier.id < OutboxRow.id,
            earlier.state != State.DELIVERED.value,
        )
        due = (
            select(OutboxRow.id)
            .where(OutboxRow.state == State.PENDING.value,
                   OutboxRow.next_attempt_at <= (datetime.max.replace(tzinfo=UTC) if early else now),
                   or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now),
                   or_(OutboxRow.ticket_id.is_(None), ~blocked))
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxRow)
        )
        stmt = (
            update(OutboxRow)
            .where(OutboxRow.id.in_(due.scalar_subquery()))
            .values(lease_owner=worker, lease_until=now + timedelta(seconds=lease_s),
                    attempts=OutboxRow.attempts + 1)
            .returning(OutboxRow.id, OutboxRow.kind, OutboxRow.key, OutboxRow.ticket_id, OutboxRow.body,
                       OutboxRow.attempts, OutboxRow.last_status)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
            case_numbers = await self._case_numbers(conn, {r.ticket_id for r in rows if r.kind == Kind.PROGRESS})
        claimed = [Claimed(r.id, Kind(r.kind), r.key, r.ticket_id, r.body, r.attempts,
                           case_numbers.get(r.ticket_id or ""), r.last_status) for r in rows]
        claimed.sort(key=lambda c: c.id)
        return claimed

    async def _case_numbers(self, conn: AsyncConnection, ticket_ids: set[str | None]) -> dict[str, str]:
        ids = [t for t in ticket_ids if t]
        if not ids:
            return {}
        result = await conn.execute(
            select(OutboxRow.key, OutboxRow.receipt)
            .where(OutboxRow.kind == Kind.CASE.value, OutboxRow.key.in_(ids))
        )
        return {key: str(receipt["platform_case_no"]) for key, receipt in result
                if isinstance(receipt, dict) and receipt.get("platform_case_no")}

    # ----------------------------------------------------------------- settling

    async def settle(self, worker: str, results: Sequence[Settled]) -> None:
        """Record one batch of attempts in one transaction, with the hooks' changes."""
        if not results:
            return
        now = self.clock()
        delivered = [r for r in results if r.state is State.DELIVERED]
        others = [r for r in results if r.state is not State.DELIVERED]
        async with self.engine.begin() as conn:
            if delivered:
                # Whoever holds the lease now, the platform has the document: it is delivered.
                await conn.execute(
                    update(TABLE).where(TABLE.c.id == bindparam("row_id")).values(
                        state=State.DELIVERED.value, receipt=bindparam("receipt"), delivered_at=now,
                        last_status=bindparam("status"), last_error=None, lease_owner=None, lease_until=None),
                    [{"row_id": r.row.id, "receipt": r.receipt, "status": r.status} for r in delivered],
                )
            if others:
                # Only while the lease is still ours: after it ran out, another worker owns the row.
                await conn.execute(
                    update(TABLE).where(and_(TABLE.c.id == bindparam("row_id"), TABLE.c.lease_owner == worker,
                                             TABLE.c.state == State.PENDING.value)).values(
                        state=bindparam("new_state"), next_attempt_at=bindparam("retry_at"),
                        last_status=bindparam("status"), last_error=bindparam("error"),
                        problems=bindparam("problems"), lease_owner=None, lease_until=None,
                        attempts=TABLE.c.attempts - bindparam("refund")),
                    [{"row_id": r.row.id, "new_state": r.state.value, "retry_at": r.retry_at or now,
                      "status": r.status, "error": r.error, "problems": r.problems, "refund": int(r.refund)}
                     for r in others],
                )
            for hook in self.hooks:
                await hook(conn, results)

    async def delivered_case_number(self, *, other_than: str | None) -> str | None:
        """The platform's number of a case it took lately (not ``other_than``): something to
        read back to tell "the platform lost this case" from "our URL or credentials are wrong"."""
        stmt = (select(OutboxRow.receipt)
                .where(OutboxRow.kind == Kind.CASE.value, OutboxRow.state == State.DELIVERED.value)
                .order_by(OutboxRow.delivered_at.desc()).limit(5))
        async with self.engine.connect() as conn:
            for receipt in (await conn.execute(stmt)).scalars():
                number = receipt.get("platform_case_no") if isinstance(receipt, dict) else None
                if number and str(number) != other_than:
                    return str(number)
        return None

    async def hasten(self) -> int:
        """Rows waiting out a backoff because the platform failed become due now: called when
        the platform answers again after an outage or a halt, so the backlog drains at full
        speed instead of at each row's jittered retry time (up to the backoff cap away).
        Tried rows are those with an error, not those with attempts: a halt's refusal gives
        its attempt back."""
        stmt = (update(OutboxRow)
                .where(OutboxRow.state == State.PENDING.value, OutboxRow.last_error.is_not(None),
                       OutboxRow.next_attempt_at > self.clock(), OutboxRow.lease_owner.is_(None))
                .values(next_attempt_at=self.clock()))
        async with self.engine.begin() as conn:
            count = int((await conn.execute(stmt)).rowcount or 0)
        if count:
            self.wakeup.set()
        return count

    async def release(self, worker: str) -> None:
        """Drop ``worker``'s leases: its rows are claimable again at once."""
        async with self.engine.begin() as conn:
            await conn.execute(update(OutboxRow).where(OutboxRow.lease_owner == worker,
                                                       OutboxRow.state == State.PENDING.value)
                               .values(lease_owner=None, lease_until=None))

    # ----------------------------------------------------------------- the operator's view

    async def rows(self, *, state: str | None = None, kind: str | None = None, ids: Sequence[int] = (),
                   limit: int = 50) -> list[OutboxRow]:
        stmt = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(OutboxRow.state == State(state).value)
        if kind:
            stmt = stmt.where(OutboxRow.kind == Kind(kind).value)
        if ids:
            stmt = stmt.where(OutboxRow.id.in_(list(ids)))
        async with AsyncSession(self.engine) as session:
            return list((await session.execute(stmt)).scalars())

    async def counts(self) -> dict[tuple[str, str], int]:
        """Rows per (kind, state)."""
        stmt = select(OutboxRow.kind, OutboxRow.state, func.count()).group_by(OutboxRow.kind, OutboxRow.state)
        async with self.engine.connect() as conn:
            return {(k, s): n for k, s, n in await conn.execute(stmt)}

    async def oldest_pending(self) -> datetime | None:
        stmt = select(func.min(OutboxRow.created_at)).where(OutboxRow.state == State.PENDING.value)
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar()

    async def retry(self, ids: Sequence[int] = (), *, all_dead: bool = False) -> int:
        """Dead rows back to pending, with their attempts reset (same body, so still idempotent)."""
        if not ids and not all_dead:
            raise ValueError("name the rows to retry, or ask for all dead rows")
        cond = OutboxRow.state == State.DEAD.value
        if ids:
            cond = and_(cond, OutboxRow.id.in_(list(ids)))
        return await self._requeue(cond)

    async def replay(self, ids: Sequence[int] = (), *, kind: str | None = None,
                     since: datetime | None = None) -> int:
        """Delivered rows sent again, for reconciliation after the platform lost data: the
        platform answers a replay for what it has and stores what it lost."""
        if not ids and since is None:
            raise ValueError("name the rows to replay, or give --since")
        cond = OutboxRow.state == State.DELIVERED.value
        if ids:
            cond = and_(cond, OutboxRow.id.in_(list(ids)))
        if since is not None:
            cond = and_(cond, OutboxRow.delivered_at >= since)
        if kind:
            cond = and_(cond, OutboxRow.kind == Kind(kind).value)
        return await self._requeue(cond)

    async def _requeue(self, cond: ColumnElement[bool]) -> int:
        stmt = update(OutboxRow).where(cond).values(
            state=State.PENDING.value, attempts=0, next_attempt_at=self.clock(), lease_owner=None,
            lease_until=None)
        async with self.engine.begin() as conn:
            count = (await conn.execute(stmt)).rowcount
        self.wakeup.set()
        return int(count or 0)


def insert_statement(dialect: str) -> sqlite.Insert | postgresql.Insert:
    """Insert a row; for a key already queued, keep the row as it is, unless it is dead.

    A dead row for the same key is a document the platform refused (and did not store) or
    that we gave up on: queuing it again — an agent completing the corrected ticket — takes
    the new body and starts afresh. A pending or delivered row stays: the same call record
    saved twice is one record, and a delivered key must never change its body (409)."""
    stmt = dialect_insert(dialect, TABLE)
    # Column -> what it is set to: the new row's value, or a literal (None clears it).
    fresh: dict[str, Any] = {name: stmt.excluded[name]
                             for name in ("ticket_id", "body", "state", "attempts", "next_attempt_at",
                                          "problems", "last_error", "created_at")}
    fresh.update(lease_owner=None, lease_until=None, last_status=None, receipt=None, delivered_at=None)
    return stmt.on_conflict_do_update(index_elements=["kind", "key"], set_=fresh,
                                      where=TABLE.c.state == State.DEAD.value)


__all__ = ["Claimed", "Outbox", "Settled", "SettleHook", "encode", "insert_statement"]
