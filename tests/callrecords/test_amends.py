"""Another feature's column on a call's record (the recording state) is set through the
writer, which writes it after the record itself: nobody waits for the record to exist."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callrecords.services import CallRecordRepository, CallRecordWriter
from calls.store import CallState
from core.db import sessionmaker

T0 = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def snapshot() -> dict[str, object]:
    return CallState(call_id=str(uuid.uuid4()), channel_id="sim-1", hotline_number="12315", business_line="general",
                     area_code=None, caller_phone="13800138000", language="zh-CN", started_at=T0,
                     state="connected").to_record()


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[CallRecordWriter]:
    # A long gathering pause: the snapshot and the amend meet in the writer, unwritten.
    writer = CallRecordWriter(engine, batch_delay_s=0.2)
    writer.start()
    yield writer
    await writer.close()


async def test_a_recording_state_set_before_the_record_is_written_lands_on_it(
        writer: CallRecordWriter, engine: AsyncEngine) -> None:
    row = snapshot()
    writer.save(row)
    writer.amend(str(row["call_id"]), recording_state="recording")
    await writer.flush()
    record = await CallRecordRepository(sessionmaker(engine)).get(str(row["call_id"]))
    assert record is not None and record.recording_state == "recording"


async def test_a_later_snapshot_does_not_undo_the_recording_state(
        writer: CallRecordWriter, engine: AsyncEngine) -> None:
    row = snapshot()
    writer.save(row)
    writer.amend(str(row["call_id"]), recording_state="recording")
    await writer.flush()
    writer.amend(str(row["call_id"]), recording_state="recorded")
    writer.save({**row, "state": "ended", "ended_at": T0})
    await writer.flush()
    record = await CallRecordRepository(sessionmaker(engine)).get(str(row["call_id"]))
    assert record is not None and record.recording_state == "recorded" and record.ended_at is not None


async def test_a_state_for_a_call_without_a_record_is_logged_not_kept_for_ever(
        writer: CallRecordWriter, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="callrecords.services"):
        writer.amend("no-such-call", recording_state="failed")
        await writer.flush()
    assert "no-such-call has no record to set recording_state on" in caplog.text
