"""Calls through the stand-in are recorded from answer to hang-up, stored verified under the
recordings root, linked to their tickets, and a recording that fails is visible as such."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devtools.pbx_sim.playbacks import write_wav
from national.contract import validate_case
from recordings.models import Recording
from recordings.wav import read_wav_info
from tests.fixtures.waiting import eventually
from tests.support.desktop import Desk, answered_call, ready_agent, state_is
from tests.support.documents import CREDIT_CODE
from tests.support.jurisdictions import HANGZHOU
from tickets.payload import case_payload

pytestmark = pytest.mark.slow


async def settled(desk: Desk, call_id: str, count: int = 1) -> list[Recording]:
    """The call's segments once ``count`` of them are no longer recording."""
    async def done() -> list[Recording] | None:
        rows = await desk.app.recordings.index.for_call(call_id)
        return rows if len(rows) == count and all(r.state != "recording" for r in rows) else None

    await eventually(done)
    await desk.app.recordings.recorder.drain()
    return await desk.app.recordings.index.for_call(call_id)


async def recording_state(desk: Desk, call_id: str) -> str:
    await desk.app.records.flush()
    record = await desk.app.call_records.get(call_id)
    assert record is not None
    return record.recording_state


async def test_an_answered_call_is_recorded_verified_and_linked_to_its_ticket_with_hash_and_duration(
        desk: Desk, store_root: Path) -> None:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)
    ticket = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "respondent": {"name": "杭州示例电器有限公司", "credit_code": CREDIT_CODE, "region": "330106"},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。"}}, status=201)
    await eventually(lambda: _recording_state_is(desk, call_id, "recording"))
    await agent.ok("POST", "/api/desktop/call/hangup")

    [row] = await settled(desk, call_id)
    assert row.state == "stored" and row.segment == 1 and row.name == f"{call_id}-1"
    assert row.agent_id == "1001" and row.jurisdiction == HANGZHOU and row.format == "wav"
    day = row.created_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert row.path == f"{day:%Y/%m/%d}/{HANGZHOU}/{call_id}-1.wav"
    data = (store_root / row.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.size_bytes
    assert row.duration_s == read_wav_info(data).duration_s and row.duration_s > 0
    assert desk.pbx.engine.recorder.stored() == []  # fetched over ARI, then deleted from Asterisk
    assert await recording_state(desk, call_id) == "recorded"

    linked = await desk.app.tickets.get(ticket["id"])
    assert (linked.recording_id, linked.recording_sha256, linked.recording_duration_s) == (
        row.id, row.sha256, row.duration_s)
    case = case_payload(linked)
    assert case["recording"] == {"recording_id": row.id, "sha256": row.sha256, "duration_s": row.duration_s}
    assert [p for p in validate_case(case, now=linked.received_at, idempotency_key=linked.id)
            if p.field.startswith("recording")] == []
    # A ticket made for the call afterwards carries the recording from the start.
    later = await desk.app.tickets.create({"call_id": call_id, "agent_id": "1001", "case_type": "consultation"},
                                          by="agent1001")
    assert later.recording_sha256 == row.sha256


async def _recording_state_is(desk: Desk, call_id: str, wanted: str) -> bool:
    return await recording_state(desk, call_id) == wanted


async def test_a_recording_asterisk_fails_is_marked_failed_on_the_call_record_never_silently_missing(
        desk: Desk) -> None:
    agent = await ready_agent(desk)
    desk.pbx.engine.recorder.fail_next.append("Failed to answer channel")
    call_id = await answered_call(desk, agent)
    [row] = await settled(desk, call_id)
    assert row.state == "failed" and "Failed to answer channel" in (row.error or "")
    assert await recording_state(desk, call_id) == "failed"
    await agent.ok("POST", "/api/desktop/call/hangup")


async def test_a_recording_asterisk_refuses_to_start_is_marked_failed_with_its_reason(desk: Desk) -> None:
    agent = await ready_agent(desk)
    call = await desk.caller_reaches_menu()
    state = await eventually(lambda: state_is(agent, "ringing"))
    call_id = state["call"]["call_id"]
    # A file of the same name in Asterisk's spool: ifExists=fail makes Asterisk answer 409.
    clash = desk.pbx.engine.recorder.path(f"{call_id}-1")
    clash.parent.mkdir(parents=True, exist_ok=True)
    clash.write_bytes(b"RIFF")
    await agent.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(agent, "on_call"))
    [row] = await settled(desk, call_id)
    assert row.state == "failed" and "Asterisk refused to record" in (row.error or "") and "409" in row.error
    assert await recording_state(desk, call_id) == "failed"
    assert desk.pbx.channel(call.channel_id) is not None  # the caller still talks to the agent
    await agent.ok("POST", "/api/desktop/call/hangup")


async def test_a_transferred_call_is_recorded_in_two_segments_one_per_agent(desk: Desk, store_root: Path) -> None:
    first = await ready_agent(desk, "1001")
    call_id = await answered_call(desk, first)
    second = await ready_agent(desk, "1002")
    await first.ok("POST", "/api/desktop/call/transfer", {"queue": {"jurisdiction": HANGZHOU, "line": "general"}})
    await eventually(lambda: state_is(second, "ringing"))
    await second.ok("POST", "/api/desktop/call/answer")
    await eventually(lambda: state_is(second, "on_call"))
    await second.ok("POST", "/api/desktop/call/hangup")

    rows = await settled(desk, call_id, count=2)
    assert [(r.segment, r.agent_id, r.state) for r in rows] == [(1, "1001", "stored"), (2, "1002", "stored")]
    assert all((store_root / (r.path or "")).is_file() for r in rows)
    assert await recording_state(desk, call_id) == "recorded"


async def test_recordings_that_finished_while_we_were_away_are_stored_when_we_connect_again(desk: Desk) -> None:
    index, recorder = desk.app.recordings.index, desk.app.recordings.recorder
    finished = await index.begin(call_id=str(uuid.uuid4()), segment=1, agent_id="1001", jurisdiction=HANGZHOU,
                                 fmt="wav")
    desk.pbx.engine.recorder.dir.mkdir(parents=True, exist_ok=True)
    write_wav(desk.pbx.engine.recorder.path(finished.name), bytes(16000))  # its RecordingFinished was missed
    lost = await index.begin(call_id=str(uuid.uuid4()), segment=1, agent_id="1001", jurisdiction=HANGZHOU,
                             fmt="wav")

    await recorder.recover()
    await recorder.drain()

    stored, failed = await index.get(finished.id), await index.get(lost.id)
    assert stored is not None and stored.state == "stored" and stored.duration_s == 1.0
    assert failed is not None and failed.state == "failed" and "neither live nor stored" in (failed.error or "")
    assert desk.pbx.engine.recorder.stored() == []


async def test_a_ticket_completed_during_the_call_waits_and_goes_to_the_platform_with_its_recording(
        desk: Desk, store_root: Path) -> None:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)
    await eventually(lambda: _recording_state_is(desk, call_id, "recording"))
    ticket = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {
        "respondent": {"name": "杭州示例电器有限公司", "credit_code": CREDIT_CODE, "region": "330106"},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。"}}, status=201)
    await agent.ok("POST", f"/api/desktop/tickets/{ticket['id']}/complete", {"version": ticket["version"]})
    [held] = await desk.app.outbox.rows(kind="case")
    assert held.state == "held"  # the caller is still talking: the recording is not finished

    await agent.ok("POST", "/api/desktop/call/hangup")
    [row] = await settled(desk, call_id)

    async def released() -> object:
        [case] = await desk.app.outbox.rows(kind="case")
        return case if case.state == "pending" else None

    case_row = await eventually(released)
    body = json.loads(case_row.body)
    assert body["recording"] == {"recording_id": row.id, "sha256": row.sha256, "duration_s": row.duration_s}
    assert validate_case(body, now=row.created_at, idempotency_key=ticket["id"]) == []


async def test_a_held_case_is_let_go_after_the_longest_hold_even_without_a_recording(desk: Desk) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    outbox = desk.app.outbox
    async with AsyncSession(outbox.engine) as session, session.begin():
        await outbox.enqueue(session, kind="case", key=str(uuid.uuid4()), body={"x": 1}, held=True)
    assert await outbox.claim("w", 10, 60) == []
    assert await outbox.release_stale(3600) == 0
    assert await outbox.release_stale(0) == 1
    assert len(await outbox.claim("w", 10, 60)) == 1
