"""Processes starting together on a fresh SQLite file: each one's first connection switches the
file to WAL, and SQLite answers the losers "database is locked" at once, busy timeout or not."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine


async def test_connections_opening_a_fresh_file_together_all_get_it_in_wal(tmp_path: Path) -> None:
    # Six at once on a new file each time, several times: the race is lost now and then (4 of 40
    # rounds failed before the switch was tried again).
    for round_no in range(8):
        engines = [make_engine(f"sqlite+aiosqlite:///{tmp_path}/fresh{round_no}.db") for _ in range(6)]

        async def first_write(engine: AsyncEngine) -> str:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS t (a INTEGER)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                return str((await conn.execute(text("PRAGMA journal_mode"))).scalar())

        try:
            modes = await asyncio.gather(*(first_write(e) for e in engines))
        finally:
            for engine in engines:
                await engine.dispose()
        assert modes == ["wal"] * 6
