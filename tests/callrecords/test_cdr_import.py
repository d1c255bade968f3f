"""Calls Asterisk served without the application (its fallback while the application was down,
numbers that are not ours) become call records from Asterisk's CDR file, once each, and go on
to the national platform like every other call record.

The CDR lines are real: ``data/hotline-cdr-asterisk-22.10.1.csv`` was written by Asterisk
22.10.1 running ``dialplans/extensions.conf`` and ``dialplans/cdr_custom.conf``, with SIP
callers (sipp) on the carrier trunk and agent 1001 a SIP phone in the fallback queue.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from accounts.models import User
from callrecords.cdr import call_id_for
from callrecords.cdr_import import CdrImporter, ImportStats, agents_from_accounts
from callrecords.feed import CallRecordFeed
from callrecords.models import CallRecord, CdrImportState
from delivery.outbox import Outbox
from national.contract import validate_call_record
from tests.support.cdr import (
    ABANDONED_APOLOGY,
    ABANDONED_QUEUED,
    ANSWERED,
    INVALID,
    INVALID_AREA,
    JOINEMPTY,
    LINES,
    TIMEOUT,
    UNMARKED,
)


#: For the settle rule: a clock long after the file was written, and one right after.
def still_for_an_hour() -> float:
    return time.time() + 3600


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@pytest.fixture
def outbox(engine: AsyncEngine) -> Outbox:
    return Outbox(engine)


def importer(engine: AsyncEngine, outbox: Outbox, clock: Callable[[], float] = still_for_an_hour,
             **kw: object) -> CdrImporter:
    return CdrImporter(engine, after_write=CallRecordFeed(outbox), agents=agents_from_accounts, clock=clock,
                       **kw)  # type: ignore[arg-type]


async def records(engine: AsyncEngine) -> dict[str, CallRecord]:
    async with AsyncSession(engine) as session:
        return {r.channel_id: r for r in (await session.execute(select(CallRecord))).scalars()}


def write(path: Path, lines: list[str] | tuple[str, ...], mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as f:
        f.write("".join(lines))


# --------------------------------------------------------------------------- what a call becomes


async def test_each_call_asterisk_served_alone_becomes_one_call_record_with_its_outcome(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    stats = await importer(engine, outbox).import_file(cdr)

    assert (stats.lines, stats.marked_lines, stats.imported, stats.skipped_lines) == (9, 9, 7, 0)
    got = await records(engine)
    assert set(got) == {ANSWERED, ABANDONED_QUEUED, TIMEOUT, JOINEMPTY, ABANDONED_APOLOGY, INVALID_AREA, INVALID}
    outcome = {uid: (r.outcome, r.hangup_cause) for uid, r in got.items()}
    assert outcome == {
        ANSWERED: ("answered", "dialplan fallback: answered by PJSIP/1001"),
        ABANDONED_QUEUED: ("abandoned_in_queue", "dialplan fallback: caller hung up while queued"),
        TIMEOUT: ("failed", "dialplan fallback: queue TIMEOUT"),
        JOINEMPTY: ("failed", "dialplan fallback: queue JOINEMPTY"),
        ABANDONED_APOLOGY: ("abandoned_in_menu", "dialplan fallback: caller hung up before the queue"),
        INVALID_AREA: ("failed", "invalid number 057112399"),
        INVALID: ("failed", "invalid number 110"),
    }
    answered = got[ANSWERED]
    # The call id is derived from Asterisk's uniqueid: the same call is always the same record.
    assert answered.call_id == call_id_for(ANSWERED)
    assert (answered.hotline_number, answered.business_line, answered.area_code, answered.caller_phone) == (
        "12315", "general", "0571", "13800138000")
    # Times from the CDR (seconds since the epoch: UTC whatever the Asterisk host's zone);
    # queued and answered from ${EPOCH}, whole seconds.
    assert answered.started_at == utc(1796507615.589047)
    assert answered.queued_at == utc(1796507617) and answered.answered_at == utc(1796507617)
    assert answered.ended_at == utc(1796507667.649048)
    assert answered.agent_id == "1001"  # no account has PJSIP/1001: named by the endpoint
    # The TIMEOUT call's three lines (two ring attempts, then the queue's verdict) are one call.
    timeout = got[TIMEOUT]
    assert (timeout.started_at, timeout.ended_at) == (utc(1796507631.117338), utc(1796507639.624174))
    assert timeout.answered_at is None and timeout.agent_id is None
    assert (got[ABANDONED_APOLOGY].queued_at, got[ABANDONED_APOLOGY].area_code) == (None, None)
    assert (got[INVALID_AREA].hotline_number, got[INVALID_AREA].business_line,
            got[INVALID_AREA].area_code) == ("12399", "invalid_number", "0571")
    assert all(r.state == "ended" and r.recognized_by == "none" and r.menu_path == [] for r in got.values())
    assert stats.outcomes == {"answered": 1, "abandoned_in_queue": 1, "failed": 4, "abandoned_in_menu": 1}


async def test_calls_to_our_numbers_are_queued_for_the_platform_valid_by_its_rules_and_others_are_not(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    stats = await importer(engine, outbox).import_file(cdr)

    rows = {row.key: row for row in await outbox.rows(kind="call_record")}
    # The platform's CallRecord knows the five hotline numbers only: calls to 12399 and 110
    # are kept here, not sent to be refused.
    expected = {call_id_for(u) for u in (ANSWERED, ABANDONED_QUEUED, TIMEOUT, JOINEMPTY, ABANDONED_APOLOGY)}
    assert set(rows) == expected and stats.for_platform == 5
    for key, row in rows.items():
        body = json.loads(row.body)
        assert row.state == "pending", row.problems
        assert validate_call_record(body, idempotency_key=key) == []
    answered = json.loads(rows[call_id_for(ANSWERED)].body)
    assert answered == {
        "call_id": call_id_for(ANSWERED), "hotline_number": "12315", "caller_phone": "13800138000",
        "started_at": "2026-12-06T05:53:35+08:00", "queued_at": "2026-12-06T05:53:37+08:00",
        "answered_at": "2026-12-06T05:53:37+08:00", "ended_at": "2026-12-06T05:54:27+08:00",
        "recognized_by": "none", "outcome": "answered", "agent_id": "1001",
    }


async def test_the_agent_who_answered_is_named_by_the_account_that_has_their_phone(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    async with AsyncSession(engine) as session, session.begin():
        session.add(User(username="wang", display_name="Wang", role="agent", jurisdiction="330100",
                         agent_id="hz-017", sip_endpoint="PJSIP/1001", lines=["general"], language="zh-CN",
                         password_hash="-", created_at=datetime.now(UTC)))
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    await importer(engine, outbox).import_file(cdr)
    assert (await records(engine))[ANSWERED].agent_id == "hz-017"


async def test_callers_numbers_are_masked_in_the_log(engine: AsyncEngine, outbox: Outbox, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    with caplog.at_level(logging.INFO, logger="callrecords"):
        await importer(engine, outbox).import_file(cdr)
    assert "138****8000" in caplog.text
    for number in ("13800138000", "13912345678", "02087654321", "15900001111"):
        assert number not in caplog.text


# --------------------------------------------------------------------------- once each


async def test_reading_the_file_again_imports_and_queues_nothing_twice(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    await importer(engine, outbox).import_file(cdr)
    again = await importer(engine, outbox).import_file(cdr)
    assert (again.imported, again.already_imported, again.for_platform) == (0, 7, 0)
    assert len(await records(engine)) == 7
    assert len(await outbox.rows(kind="call_record")) == 5


async def test_lines_of_calls_the_application_served_and_lines_of_another_layout_are_skipped(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    foreign = '"","13800138000","12315","from-pstn","PJSIP/carrier-1","","Stasis","hotline","2026-12-05 21:53:35"\n'
    write(cdr, [UNMARKED, LINES[0], foreign, "\n", LINES[1]])
    with caplog.at_level(logging.WARNING, logger="callrecords"):
        stats = await importer(engine, outbox).import_file(cdr)
    assert (stats.lines, stats.marked_lines, stats.skipped_lines, stats.imported) == (5, 2, 1, 2)
    assert "not a line of layout hotline-cdr-1" in caplog.text
    assert set(await records(engine)) == {ABANDONED_QUEUED, TIMEOUT}


async def test_following_the_file_goes_on_after_a_restart_where_the_last_process_stopped(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES[:5])
    first = await importer(engine, outbox).poll(cdr)
    assert (first.lines, first.imported) == (5, 3)
    assert await importer(engine, outbox).poll(cdr) == ImportStats()  # nothing new: nothing read

    write(cdr, LINES[5:], mode="a")  # Asterisk goes on writing while we are down
    restarted = importer(engine, outbox)  # a new process: only the database remembers
    after = await restarted.poll(cdr)
    assert (after.lines, after.imported, after.already_imported) == (4, 4, 0)
    async with AsyncSession(engine) as session:
        state = await session.get(CdrImportState, str(cdr))
    assert state is not None and state.byte_offset == cdr.stat().st_size
    assert len(await records(engine)) == 7


async def test_a_call_still_being_written_at_the_end_of_the_file_waits_until_the_file_is_still(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES[:3])  # the TIMEOUT call: Asterisk has written two of its three lines
    now = [time.time()]
    follower = importer(engine, outbox, clock=lambda: now[0], settle_s=3.0)
    stats = await follower.poll(cdr)
    assert (stats.imported, stats.held_back) == (1, 1)
    write(cdr, LINES[3:4], mode="a")  # its last line
    now[0] = os.stat(cdr).st_mtime + 3.5
    stats = await follower.poll(cdr)
    assert (stats.imported, stats.held_back) == (1, 0)
    timeout = (await records(engine))[TIMEOUT]
    assert (timeout.outcome, timeout.hangup_cause) == ("failed", "dialplan fallback: queue TIMEOUT")


async def test_a_line_asterisk_has_not_finished_writing_is_left_for_the_next_read(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    half = len(LINES[5]) // 2
    write(cdr, [*LINES[4:5], LINES[5][:half]])
    follower = importer(engine, outbox)
    assert (await follower.poll(cdr)).imported == 1
    write(cdr, [LINES[5][half:]], mode="a")
    assert (await follower.poll(cdr)).imported == 1
    assert set(await records(engine)) == {JOINEMPTY, ABANDONED_APOLOGY}


async def test_a_field_with_a_newline_or_quotes_is_one_line_of_the_file(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    # cdr_custom quotes every field and doubles the quotes inside one: a caller id with a
    # newline or a quote is still one CDR.
    line = LINES[4].replace('"13600000001"', '"1360000\n""0001"')
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, [line, LINES[5]])
    stats = await importer(engine, outbox).import_file(cdr)
    assert (stats.lines, stats.imported, stats.skipped_lines) == (2, 2, 0)
    assert (await records(engine))[JOINEMPTY].caller_phone == '1360000\n"0001'


async def test_a_rotated_file_is_finished_where_it_went_before_the_new_one_is_read(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES[:1])
    follower = importer(engine, outbox)
    assert (await follower.poll(cdr)).imported == 1
    write(cdr, LINES[1:6], mode="a")  # written after our last read, just before logrotate renamed the file
    cdr.rename(tmp_path / "hotline-cdr.csv.1")
    write(cdr, LINES[6:])  # Asterisk opens the path again for its next line: a new file
    stats = await follower.poll(cdr)
    assert (stats.imported, stats.already_imported) == (6, 0)
    assert len(await records(engine)) == 7
    assert len(await outbox.rows(kind="call_record")) == 5
    assert (await follower.poll(cdr)) == ImportStats()


async def test_two_importers_on_one_file_import_each_call_once(
        engine: AsyncEngine, outbox: Outbox, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    write(cdr, LINES)
    one, two = importer(engine, outbox), importer(engine, outbox)
    await one.poll(cdr)
    await two.poll(cdr)
    await one.import_file(cdr)  # and an operator's one-shot import of the same file
    assert len(await records(engine)) == 7
    assert len(await outbox.rows(kind="call_record")) == 5
