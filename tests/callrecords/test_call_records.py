"""Call records on a real SQLite file and a real PostgreSQL server: every test runs on both."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from callrecords.plugin import CallRecords, build
from callrecords.services import CallRecordRepository, CallRecordWriter, upsert_statement
from calls.store import CallState
from core.db import make_engine, sessionmaker
from core.migrate import create_schema
from core.settings import SettingsError, load_settings
from delivery.outbox import Outbox
from tests.fixtures.waiting import eventually

T0 = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)


def call(n: int = 0, **changes: Any) -> CallState:
    """A live call as the IVR holds it; ``to_record()`` gives the row the flows hand the writer."""
    state = CallState(
        call_id=str(uuid.uuid4()), channel_id=f"sim-{n}", hotline_number="12331", business_line="food_drug",
        area_code="0571", caller_phone="13800138000", language="zh-CN", started_at=T0 + timedelta(seconds=n),
        state="main_menu",
    )
    return replace(state, **changes)


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[CallRecordWriter]:
    writer = CallRecordWriter(engine, batch_delay_s=0.01)
    writer.start()
    yield writer
    await writer.close()


@pytest.fixture
def repository(engine: AsyncEngine) -> CallRecordRepository:
    return CallRecordRepository(sessionmaker(engine))


async def test_a_saved_snapshot_is_readable_after_flush(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    state = call(transcript="我要投诉", confidence=0.87)
    writer.save(state.to_record())
    await writer.flush()
    record = await repository.get(state.call_id)
    assert record is not None
    assert record.as_dict() == state.to_record()


async def test_a_later_snapshot_of_the_same_call_replaces_the_earlier_one(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    state = call()
    writer.save(state.to_record())
    await writer.flush()
    later = replace(state, state="ended", choice="complaint", outcome="abandoned_in_queue",
                    queued_at=T0 + timedelta(seconds=20), ended_at=T0 + timedelta(seconds=95),
                    hangup_cause="normal")
    writer.save(later.to_record())
    await writer.flush()
    records = await repository.all()
    assert [r.as_dict() for r in records] == [later.to_record()]


async def test_later_snapshots_of_many_calls_replace_the_earlier_ones_across_batches(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    writer = CallRecordWriter(engine, batch_delay_s=0.01, max_batch=500)
    writer.start()
    try:
        states = [call(n) for n in range(1200)]
        for state in states:
            writer.save(state.to_record())
        await writer.flush(timeout=60)
        first_pass = writer.batches_written
        assert first_pass >= 3  # 1,200 rows cannot fit in batches of 500 otherwise
        for state in states:
            writer.save(replace(state, state="ended", outcome="abandoned_in_menu", ended_at=T0 + timedelta(hours=1))
                        .to_record())
        await writer.flush(timeout=60)
        assert writer.batches_written - first_pass >= 3
    finally:
        await writer.close()
    records = await repository.all()
    assert len(records) == 1200
    assert {r.call_id for r in records} == {s.call_id for s in states}
    assert all(r.outcome == "abandoned_in_menu" and r.ended_at == T0 + timedelta(hours=1) for r in records)


async def test_times_come_back_timezone_aware_utc_and_equal_to_what_was_stored(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    beijing = timezone(timedelta(hours=8))
    started = datetime(2026, 11, 24, 17, 30, 15, 654321, tzinfo=beijing)  # a caller's local time
    state = call(started_at=started, queued_at=started + timedelta(microseconds=1))
    writer.save(state.to_record())
    await writer.flush()
    record = await repository.get(state.call_id)
    assert record is not None
    assert record.started_at == started and record.queued_at == started + timedelta(microseconds=1)
    assert record.started_at.tzinfo == UTC and record.queued_at.tzinfo == UTC
    assert (record.started_at.hour, record.started_at.microsecond) == (9, 654321)
    assert record.answered_at is None and record.ended_at is None


async def test_a_naive_datetime_is_refused_with_a_clear_error(engine: AsyncEngine) -> None:
    row = call().to_record() | {"started_at": datetime(2026, 11, 24, 9, 30)}
    with pytest.raises(StatementError, match="naive datetime given; use timezone-aware UTC times"):
        async with engine.begin() as conn:
            await conn.execute(upsert_statement(engine.dialect.name), [row])
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM call_records"))).scalar_one() == 0


async def test_the_menu_path_round_trips_as_a_list(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    path = ["main_menu:timeout", "main_menu:7:no_match", "main_menu:speech:投诉", "main_menu:1:complaint"]
    with_path, without = call(0, menu_path=path), call(1)
    writer.save(with_path.to_record())
    writer.save(without.to_record())
    await writer.flush()
    assert (await repository.get(with_path.call_id)).menu_path == path  # type: ignore[union-attr]
    assert (await repository.get(without.call_id)).menu_path == []  # type: ignore[union-attr]


async def test_open_records_lists_only_calls_that_have_not_ended(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    in_menu, queued = call(0), call(1, state="queued", queued_at=T0 + timedelta(seconds=30))
    ended = call(2, state="ended", outcome="abandoned_in_menu", ended_at=T0 + timedelta(seconds=40))
    for state in (in_menu, queued, ended):
        writer.save(state.to_record())
    await writer.flush()
    assert {r.call_id for r in await repository.open_records()} == {in_menu.call_id, queued.call_id}


async def test_by_channel_returns_the_latest_call_of_a_channel(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    earlier = call(0, channel_id="sim-reused")
    latest = call(60, channel_id="sim-reused")
    other = call(120, channel_id="sim-other")
    for state in (latest, earlier, other):  # saved out of order on purpose
        writer.save(state.to_record())
    await writer.flush()
    record = await repository.by_channel("sim-reused")
    assert record is not None and record.call_id == latest.call_id
    assert await repository.by_channel("sim-unknown") is None


async def test_snapshots_whose_write_failed_are_written_once_the_table_is_back(
    engine: AsyncEngine, writer: CallRecordWriter, repository: CallRecordRepository, caplog: pytest.LogCaptureFixture
) -> None:
    # A migration holding the table renamed away: every write fails until it is back.
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE call_records RENAME TO call_records_migrating"))
    first, second = call(0), call(1)
    with caplog.at_level(logging.ERROR, logger="callrecords.services"):
        writer.save(first.to_record())
        writer.save(second.to_record())
        for _ in range(500):
            if any("failed; will retry" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the write did not fail although the table was gone")
    # A newer snapshot saved while the writer waits to retry wins over the one it kept.
    ended = replace(second, state="ended", outcome="abandoned_in_menu", ended_at=T0 + timedelta(seconds=9))
    writer.save(ended.to_record())
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE call_records_migrating RENAME TO call_records"))
    await writer.flush()
    assert sorted((r.as_dict() for r in await repository.all()), key=lambda r: r["channel_id"]) == [
        first.to_record(), ended.to_record()
    ]


async def test_snapshots_whose_connection_postgresql_dropped_are_written_on_a_new_one(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # What a PostgreSQL restart or failover does to the pool: every open connection dies.
    engine = make_engine(postgres_url)
    await create_schema(engine)
    writer = CallRecordWriter(engine, batch_delay_s=0.01)
    writer.start()
    try:
        before, after = call(0), call(1)
        writer.save(before.to_record())
        await writer.flush()
        admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 1
        with caplog.at_level(logging.ERROR, logger="callrecords.services"):
            writer.save(after.to_record())
            await writer.flush()
        assert any("failed; will retry" in r.getMessage() for r in caplog.records)
        records = await CallRecordRepository(sessionmaker(engine)).all()
        assert [r.call_id for r in records] == [before.call_id, after.call_id]
    finally:
        await writer.close()
        await engine.dispose()


async def test_a_record_the_database_refuses_is_set_aside_and_the_others_are_written(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    good = [call(n) for n in range(5)]
    bad = call(99).to_record()
    bad["started_at"] = datetime(2026, 11, 24, 9, 30)  # naive: refused on every backend
    for state in good[:2]:
        writer.save(state.to_record())
    writer.save(bad)
    for state in good[2:]:
        writer.save(state.to_record())
    await writer.flush()
    for state in good:
        assert await repository.get(state.call_id) is not None
    assert await repository.get(bad["call_id"]) is None
    assert list(writer.rejected) == [bad["call_id"]]


async def test_a_caller_who_talks_for_minutes_still_gets_a_call_record(
    writer: CallRecordWriter, repository: CallRecordRepository
) -> None:
    state = call(transcript="投诉" * 3000)
    writer.save(state.to_record())
    await writer.flush()
    stored = await repository.get(state.call_id)
    assert stored is not None and stored.transcript == ("投诉" * 3000)[:2000]


async def test_snapshots_saved_within_the_writers_pause_are_one_transaction_and_a_flush_does_not_wait_for_it(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    # An hour's pause: the records below are there only because flush() writes at once.
    writer = CallRecordWriter(engine, batch_delay_s=3600)
    writer.start()
    try:
        first, second = call(1), call(2)
        for state in ("answering", "welcome", "main_menu"):
            writer.save(replace(first, state=state).to_record())
        writer.save(second.to_record())
        await writer.flush()
        assert writer.batches_written == 1
        assert {r.call_id: r.state for r in await repository.all()} == {first.call_id: "main_menu",
                                                                       second.call_id: "main_menu"}
    finally:
        await writer.close()


async def test_the_repository_of_the_writers_process_reads_a_record_before_it_is_committed(
    engine: AsyncEngine
) -> None:
    writer = CallRecordWriter(engine, batch_delay_s=3600)
    writer.start()
    repository = CallRecordRepository(sessionmaker(engine), unwritten=writer.unwritten)
    try:
        state = call(1)
        writer.save(state.to_record())
        record = await repository.get(state.call_id)
        assert record is not None and record.as_dict() == state.to_record()
        await writer.flush()
        later = replace(state, state="connected", agent_id="1001", answered_at=T0 + timedelta(seconds=30))
        writer.save(later.to_record())  # the database has the earlier snapshot: this one is read over it
        record = await repository.get(state.call_id)
        assert record is not None and record.as_dict() == later.to_record()
        assert (await CallRecordRepository(sessionmaker(engine)).get(state.call_id)).state == "main_menu"
    finally:
        await writer.close()


@asynccontextmanager
async def started(engine: AsyncEngine, **options: Any) -> AsyncIterator[CallRecordWriter]:
    """A writer running with ``options`` for the block, closed (flushed) after it."""
    writer = CallRecordWriter(engine, **{"batch_delay_s": 0.01, **options})
    writer.start()
    try:
        yield writer
    finally:
        await writer.close()


async def test_a_live_calls_snapshots_wait_and_its_end_writes_them_as_one_row(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    """A call's menu, queue and answer replace each other while they wait; the end goes at once."""
    async with started(engine, live_hold_s=3600) as writer:
        state = call()
        for step in ("main_menu", "routed", "connecting", "connected"):
            writer.save(replace(state, state=step).to_record())
        await asyncio.sleep(0.1)
        assert await repository.all() == [] and writer.batches_written == 0
        ended = replace(state, state="ended", outcome="answered", ended_at=T0 + timedelta(seconds=30))
        writer.save(ended.to_record())

        async def written() -> bool:
            return writer.batches_written == 1

        await eventually(written)
        assert [r.as_dict() for r in await repository.all()] == [ended.to_record()]


async def test_a_live_calls_snapshot_is_written_once_its_hold_is_over_and_at_once_on_flush(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    one, two = call(1), call(2)
    async with started(engine, live_hold_s=0.2) as writer:
        writer.save(one.to_record())

        async def one_written() -> bool:
            return await repository.get(one.call_id) is not None

        await eventually(one_written)  # its hold (0.2 s) is over: written with nothing else
    async with started(engine, live_hold_s=3600) as slow:
        slow.save(two.to_record())
        await slow.flush()  # shutting down, or a test: everything now, holds or not
        assert await repository.get(two.call_id) is not None


async def test_a_later_live_call_is_written_when_its_own_hold_is_over_though_the_writer_slept_on(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    """A snapshot due after the one the writer sleeps until does not wake it (a call makes
    several): it is still written, at its own time, with its latest state."""
    one, two = call(1), call(2)
    async with started(engine, live_hold_s=0.4) as writer:
        writer.save(one.to_record())
        await asyncio.sleep(0.3)
        writer.save(two.to_record())
        writer.save(replace(two, state="routed").to_record())

        async def one_written() -> bool:
            return await repository.get(one.call_id) is not None

        await eventually(one_written)
        assert await repository.get(two.call_id) is None  # its hold is not over yet

        async def two_written() -> bool:
            return await repository.get(two.call_id) is not None

        await eventually(two_written)
        record = await repository.get(two.call_id)
        assert record is not None and record.state == "routed"


async def test_a_live_snapshot_late_in_its_hold_rides_with_another_calls_end_and_a_fresh_one_waits(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    """A transaction is committed for the ended call anyway: the live snapshot whose hold is
    more than half over goes in it, not in one of its own a moment later."""
    late, fresh, over = call(1), call(2), call(3)
    async with started(engine, live_hold_s=1.0) as writer:
        writer.save(late.to_record())
        await asyncio.sleep(0.6)
        writer.save(fresh.to_record())
        writer.save(replace(over, state="ended", outcome="answered", ended_at=T0 + timedelta(seconds=30)).to_record())

        async def written() -> bool:
            return writer.batches_written == 1

        await eventually(written)
        assert {r.call_id for r in await repository.all()} == {late.call_id, over.call_id}
        assert writer.unwritten(fresh.call_id) == fresh.to_record()  # its hold has barely begun


async def test_what_waits_for_a_calls_record_runs_once_its_latest_snapshot_is_committed(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    """The call core deletes an ended call's live state then: not while the end is in memory."""
    one = call(1)
    ended = replace(one, state="ended", outcome="answered", ended_at=T0 + timedelta(seconds=30))
    ran: list[str] = []
    async with started(engine, batch_delay_s=0.2) as writer:
        writer.save(ended.to_record())
        writer.when_written(one.call_id, lambda: ran.append("run"))
        writer.save(replace(ended, hangup_cause="16 Normal Clearing").to_record())  # a later cause
        await asyncio.sleep(0.05)
        assert ran == []  # nothing committed yet

        async def done() -> bool:
            return ran == ["run"]

        await eventually(done)
        record = await repository.get(one.call_id)
        assert record is not None and record.hangup_cause == "16 Normal Clearing"
        writer.when_written(one.call_id, lambda: ran.append("at once"))  # nothing of it waits
        assert ran == ["run", "at once"]


async def test_the_served_writer_gathers_ended_calls_for_the_configured_pause_into_one_transaction(
    engine: AsyncEngine, repository: CallRecordRepository
) -> None:
    """``[callrecords] batch_delay_s``: at a quiet hour each call's end was a transaction of its
    own; the pause gathers the ends of the calls that finish within it."""
    # A pause long beside the test's own steps: a loop held up a moment (the other test worker,
    # garbage collection) must not end it between the two ends.
    settings = load_settings(callrecords={"batch_delay_s": 1.0})
    feature = await build(settings=settings, db=engine, outbox=Outbox(engine))
    assert isinstance(feature.api, CallRecords)
    writer = feature.api.writer
    assert feature.start is not None
    await feature.start()
    try:
        first, second = (replace(call(n), state="ended", outcome="abandoned", ended_at=T0 + timedelta(seconds=9))
                         for n in (1, 2))
        writer.save(first.to_record())
        await asyncio.sleep(0.1)  # the second caller hangs up a moment later
        writer.save(second.to_record())
        await asyncio.sleep(0.05)
        assert await repository.all() == []  # the pause is not over

        async def both_written() -> bool:
            return len(await repository.all()) == 2

        await eventually(both_written)
        assert writer.batches_written == 1
    finally:
        await writer.close()


def test_a_batch_delay_out_of_range_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"callrecords\.batch_delay_s = -1: must be from 0 to 60"):
        load_settings(callrecords={"batch_delay_s": -1})
