"""SQL engine, declarative base and column types shared by every feature's tables."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, Table, create_engine, event, pool
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

T = TypeVar("T")


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so readers never block the writer."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # The busy timeout goes first: switching a new file to WAL needs the write lock,
    # which another process may hold while it migrates the schema.
    cur.execute("PRAGMA busy_timeout=30000")
    _to_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


#: How often, and how far apart, a new SQLite file's switch to WAL is tried again while another
#: process switches it at the same moment: SQLite then answers "database is locked" at once,
#: without waiting out the busy timeout (two processes starting together on a fresh file).
WAL_TRIES, WAL_RETRY_S = 150, 0.02


def _to_wal(cur: Any) -> None:
    for _ in range(WAL_TRIES - 1):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        cur.execute("PRAGMA journal_mode")
        if str(cur.fetchone()[0]).lower() == "wal":
            return  # the other process switched it: WAL is the file's, for every connection
        # Blocks the loop, but only in that race, at a connection's start, for 20 ms at a time.
        time.sleep(WAL_RETRY_S)
    cur.execute("PRAGMA journal_mode=WAL")


class Transactions:
    """Runs a function of a (synchronous) connection as one transaction, without blocking the
    event loop; what it returns comes back.

    On a SQLite file the whole transaction runs on one worker thread of its own, with its own
    connection to the same file (WAL lets both engines' connections share it): one hand-off
    to that thread and back per transaction. Through the async driver every cursor step of a
    transaction (open, execute, close, commit) is a hand-off of its own: a call record and its
    outbox row were about ten, 2.4 ms of CPU at one call a second against 1.2 this way (issue
    15). Elsewhere (PostgreSQL: asyncpg has no thread to hand to) and on an in-memory SQLite
    (a second engine would open another database), it runs through the async engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        #: The SQLite file's own engine and the one thread that uses it; None: the async engine.
        self._local: tuple[Engine, ThreadPoolExecutor] | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                and url.query.get("mode") != "memory":
            sync = create_engine(url.set(drivername="sqlite"), poolclass=pool.SingletonThreadPool)
            event.listen(sync, "connect", _sqlite_pragmas)
            self._local = sync, ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writes")

    async def run(self, work: Callable[[Connection], T]) -> T:
        if self._local is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(work)
        sync, thread = self._local
        return await asyncio.get_running_loop().run_in_executor(thread, _in_transaction, sync, work)

    async def close(self) -> None:
        """Close the worker's connection (on its own thread, where SQLite wants it closed)."""
        if self._local is None:
            return
        sync, thread = self._local
        await asyncio.get_running_loop().run_in_executor(thread, sync.dispose)
        thread.shutdown(wait=False)


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements (bulk updates, dialect inserts).

    ``__table__`` is declared a ``FromClause`` because a mapped class may sit on a join or a
    subquery; ours all sit on one plain table, and Core's ``insert``/``update`` want that.
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a plain table")
    return table


def dialect_insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that can take ``ON CONFLICT`` clauses, which each database spells in its
    own dialect (both accept ``excluded``, ``on_conflict_do_update`` and ``_do_nothing``)."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise RuntimeError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")


def rows_matched(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through a Session matched.

    ``Session.execute`` is declared to return a ``Result`` whatever the statement; for these
    it is a ``CursorResult``, the only kind that knows the count.
    """
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} has no row count: not the result of an UPDATE or DELETE")
    return result.rowcount
