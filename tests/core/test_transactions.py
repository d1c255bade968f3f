"""A transaction run off the event loop: on a SQLite file on a thread of its own, on
PostgreSQL (and an in-memory SQLite) through the async engine; both commit or roll back whole."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import Transactions, make_engine
from tests.support.loop import loop_ticks


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return engine


async def test_what_the_work_writes_is_committed_and_what_it_returns_comes_back(table: AsyncEngine) -> None:
    transactions = Transactions(table)
    try:
        def insert(conn: Connection) -> int:
            conn.execute(text("INSERT INTO t (n) VALUES (1), (2)"))
            return 2
        assert await transactions.run(insert) == 2
        assert await count(table) == 2
    finally:
        await transactions.close()


async def test_work_that_raises_leaves_nothing_behind(table: AsyncEngine) -> None:
    transactions = Transactions(table)
    try:
        def half(conn: Connection) -> None:
            conn.execute(text("INSERT INTO t (n) VALUES (1)"))
            raise RuntimeError("the second half failed")
        with pytest.raises(RuntimeError, match="second half"):
            await transactions.run(half)
        assert await count(table) == 0
    finally:
        await transactions.close()


async def test_on_a_sqlite_file_the_work_runs_on_its_own_thread_and_the_loop_goes_on(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    transactions = Transactions(engine)

    def slow(conn: Connection) -> str:
        conn.execute(text("INSERT INTO t (n) VALUES (1)"))
        time.sleep(0.3)  # a slow disk: the loop must not wait for it
        return threading.current_thread().name

    try:
        async with loop_ticks(0.01) as ticks:
            name = await transactions.run(slow)
        assert name != threading.current_thread().name and name.startswith("sqlite-writes")
        assert ticks.count >= 10
        assert await count(engine) == 1  # the async engine's connections see the commit
    finally:
        await transactions.close()
        await engine.dispose()


async def test_an_in_memory_sqlite_is_written_through_its_own_engine() -> None:
    # A second engine on ":memory:" would open another, empty database.
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    transactions = Transactions(engine)
    try:
        await transactions.run(lambda conn: conn.execute(text("INSERT INTO t (n) VALUES (7)")))
        assert await count(engine) == 1
    finally:
        await transactions.close()
        await engine.dispose()
