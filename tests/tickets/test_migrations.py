"""The schema is made by Alembic migrations, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core import migrate
from core.db import make_engine
from core.migrate import create_schema
from core.settings import load_settings

HEAD = migrate.scripts().get_current_head()


@pytest.fixture
async def empty(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


def diff_with_models(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, migrate.target_metadata())


async def test_an_empty_database_is_upgraded_to_the_newest_revision_matching_the_models(
        empty: AsyncEngine) -> None:
    assert await migrate.current(empty) is None
    await migrate.upgrade(empty)
    assert await migrate.current(empty) == HEAD
    assert {"call_records", "tickets", "ticket_status_changes", "ticket_audit"} <= await tables(empty)
    async with empty.connect() as conn:
        assert await conn.run_sync(diff_with_models) == []


async def test_upgrading_again_changes_nothing(empty: AsyncEngine) -> None:
    await create_schema(empty)  # what the application calls at every start
    async with empty.begin() as conn:
        await conn.execute(text("INSERT INTO call_records (call_id, channel_id, hotline_number, business_line, "
                                "started_at, menu_path, recognized_by, state) VALUES ('c1', 'ch', '12315', "
                                "'general', '2026-11-24 02:00:00', '[]', 'none', 'ended')"))
    await create_schema(empty)
    assert await migrate.current(empty) == HEAD
    async with empty.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM call_records"))).scalar() == 1


async def test_two_processes_starting_together_upgrade_once_without_tripping_over_each_other(
        database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate.upgrade(e) for e in engines))
        assert await migrate.current(engines[0]) == HEAD
        async with engines[0].connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [r[0] for r in rows] == [HEAD]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_database_made_by_the_old_create_schema_is_adopted_with_its_call_records_kept(
        empty: AsyncEngine) -> None:
    # The old create_schema: create_all of the call record model as it was then (revision
    # 0001's frozen schema; today's model has columns added by later revisions), no history.
    old_table = migrate.scripts().get_revision(migrate.ADOPTED_REVISION).module.schema().tables["call_records"]
    async with empty.begin() as conn:
        await conn.run_sync(lambda c: old_table.create(c))
        await conn.execute(text("INSERT INTO call_records (call_id, channel_id, hotline_number, business_line, "
                                "started_at, menu_path, recognized_by, state) VALUES ('c1', 'ch', '12315', "
                                "'general', '2026-11-24 02:00:00', '[]', 'none', 'ended')"))
    await create_schema(empty)
    assert await migrate.current(empty) == HEAD
    async with empty.connect() as conn:
        assert (await conn.execute(text("SELECT call_id FROM call_records"))).scalar() == "c1"
        assert await conn.run_sync(diff_with_models) == []


async def test_an_unversioned_database_whose_tables_differ_is_refused_and_left_as_it_was(
        empty: AsyncEngine) -> None:
    other = MetaData()
    Table("call_records", other, Column("call_id", String(36), primary_key=True), Column("legs", Integer))
    async with empty.begin() as conn:
        await conn.run_sync(other.create_all)
    with pytest.raises(migrate.SchemaMismatch) as caught:
        await migrate.upgrade(empty)
    message = str(caught.value)
    assert "no migration history" in message and "call_records.legs" in message
    assert "call_records.channel_id" in message
    assert await tables(empty) == {"call_records"}


def test_the_revisions_form_one_line_from_the_initial_one() -> None:
    revisions = list(migrate.scripts().walk_revisions())
    assert revisions[-1].revision == "0001_initial" and revisions[-1].down_revision is None
    for newer, older in zip(revisions, revisions[1:], strict=False):
        assert newer.down_revision == older.revision
    assert len(migrate.scripts().get_heads()) == 1


def test_the_db_command_upgrades_and_reports_the_revision(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"})
    assert migrate.main(settings, ["current"]) == 0
    assert "no revision" in capsys.readouterr().out
    assert migrate.main(settings, ["upgrade"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{HEAD} (head)")
    assert migrate.main(settings, ["history"]) == 0
    assert "<base> -> 0001_initial" in capsys.readouterr().out
    assert migrate.main(settings, ["downgrade"]) == 2
