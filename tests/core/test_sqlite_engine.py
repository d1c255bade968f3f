"""The embedded SQLite database waits for another process's write instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from core.db import make_engine


async def test_opening_waits_while_another_process_holds_the_write_lock_longer_than_five_seconds(
        tmp_path: Path) -> None:
    # A fresh file is in rollback-journal mode; switching it to WAL needs the write lock, which
    # a process migrating the schema on a loaded machine may hold for longer than sqlite3's
    # default five-second wait.
    path = tmp_path / "core.db"
    holder = sqlite3.connect(path, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.commit()
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(5.5, holder.commit)
    release.start()
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
    finally:
        release.join()
        holder.close()
        await engine.dispose()
