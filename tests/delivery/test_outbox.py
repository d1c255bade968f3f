"""The outbox keeps what is owed to the platform: written with the change or not at all,
leased to one worker at a time, in order per ticket, retried, given up, requeued by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from delivery.models import Kind, State
from delivery.outbox import Outbox, Settled
from tests.support.clock import Clock

CASE_A = "8b0e7f4c-4a59-4c5e-9a43-1d7e3c6b2a01"
STEP_1 = "0f3c2a6e-1b7d-4e2f-8c55-5a9d0e1f2b31"
STEP_2 = "7a1d9c3e-6f2b-4d8a-b1c4-2e5f8a9b0c42"


async def enqueue(outbox: Outbox, kind: str, key: str, ticket_id: str | None = None) -> None:
    async with AsyncSession(outbox.engine) as session, session.begin():
        await outbox.enqueue(session, kind=kind, key=key, body={"id": key}, ticket_id=ticket_id)


async def test_a_row_written_in_a_transaction_that_rolls_back_is_never_sent(outbox: Outbox) -> None:
    with pytest.raises(RuntimeError):
        async with AsyncSession(outbox.engine) as session, session.begin():
            await outbox.enqueue(session, kind="case", key=CASE_A, body={"x": 1}, ticket_id=CASE_A)
            raise RuntimeError("the ticket change failed")
    assert await outbox.claim("w1", 10, 60) == []
    assert not outbox.wakeup.is_set()


async def test_a_committed_row_wakes_the_workers_and_is_claimed_once(outbox: Outbox) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    assert outbox.wakeup.is_set()
    [row] = await outbox.claim("w1", 10, 60)
    assert (row.kind, row.key, row.attempts) == (Kind.CALL_RECORD, CASE_A, 1)
    assert row.body == '{"id":"8b0e7f4c-4a59-4c5e-9a43-1d7e3c6b2a01"}'
    assert await outbox.claim("w2", 10, 60) == []  # leased to w1


async def test_the_same_key_queued_twice_is_one_row(outbox: Outbox) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    await enqueue(outbox, "call_record", CASE_A)
    assert len(await outbox.claim("w1", 10, 60)) == 1


async def test_a_killed_workers_rows_come_back_when_the_lease_runs_out(outbox: Outbox, clock: Clock) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    [first] = await outbox.claim("dead-worker", 10, 30)
    clock.advance(29)
    assert await outbox.claim("w2", 10, 30) == []
    clock.advance(2)
    [again] = await outbox.claim("w2", 10, 30)
    assert again.id == first.id and again.attempts == 2
    # The first worker wakes up late and reports a failure: the row is w2's now, not touched.
    await outbox.settle("dead-worker", [Settled(first, State.DEAD, 500, "late")])
    [row] = await outbox.rows()
    assert row.state == State.PENDING and row.lease_owner == "w2"


async def test_steps_wait_for_their_case_and_go_in_order_with_its_platform_number(outbox: Outbox) -> None:
    await enqueue(outbox, "case", CASE_A, CASE_A)
    await enqueue(outbox, "progress", STEP_1, CASE_A)
    await enqueue(outbox, "progress", STEP_2, CASE_A)
    [case] = await outbox.claim("w1", 10, 60)
    assert case.kind is Kind.CASE
    receipt = {"platform_case_no": "1231520261124000001"}
    await outbox.settle("w1", [Settled(case, State.DELIVERED, 201, receipt=receipt)])
    [step] = await outbox.claim("w1", 10, 60)
    assert (step.key, step.platform_case_no) == (STEP_1, "1231520261124000001")
    assert await outbox.claim("w2", 10, 60) == []  # step 2 waits for step 1
    await outbox.settle("w1", [Settled(step, State.DELIVERED, 201)])
    [step2] = await outbox.claim("w1", 10, 60)
    assert step2.key == STEP_2


async def test_a_refused_case_holds_back_its_steps_until_an_operator_retries_it(outbox: Outbox) -> None:
    await enqueue(outbox, "case", CASE_A, CASE_A)
    await enqueue(outbox, "progress", STEP_1, CASE_A)
    [case] = await outbox.claim("w1", 10, 60)
    problems = [{"field": "respondent.credit_code", "code": "bad_check_digit"}]
    await outbox.settle("w1", [Settled(case, State.DEAD, 422, "invalid", problems=problems)])
    assert await outbox.claim("w1", 10, 60) == []
    [dead] = await outbox.rows(state="dead")
    assert dead.problems == problems and dead.last_status == 422
    assert await outbox.retry([dead.id]) == 1
    [again] = await outbox.claim("w1", 10, 60)
    assert again.id == dead.id and again.attempts == 1


async def test_a_retried_row_waits_until_its_time(outbox: Outbox, clock: Clock) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    [row] = await outbox.claim("w1", 10, 60)
    await outbox.settle("w1", [Settled(row, State.PENDING, 503, "maintenance",
                                       retry_at=clock.now + timedelta(seconds=10))])
    assert await outbox.claim("w1", 10, 60) == []
    clock.advance(10)
    assert [r.id for r in await outbox.claim("w1", 10, 60)] == [row.id]


async def test_replay_sends_delivered_rows_again(outbox: Outbox, clock: Clock) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    [row] = await outbox.claim("w1", 10, 60)
    await outbox.settle("w1", [Settled(row, State.DELIVERED, 201)])
    with pytest.raises(ValueError, match="--since"):
        await outbox.replay()
    assert await outbox.replay(since=clock.now) == 1
    assert len(await outbox.claim("w1", 10, 60)) == 1


async def test_workers_claiming_at_once_never_share_a_row(outbox: Outbox) -> None:
    async with AsyncSession(outbox.engine) as session, session.begin():
        for i in range(200):
            await outbox.enqueue(session, kind="call_record", key=f"{i:08d}-0000-4000-8000-000000000000",
                                 body={"i": i})

    async def drain(worker: str) -> list[int]:
        got: list[int] = []
        while batch := await outbox.claim(worker, 7, 60):
            got += [r.id for r in batch]
            await asyncio.sleep(0)
        return got

    claimed = await asyncio.gather(*(drain(f"w{i}") for i in range(4)))
    every = [i for ids in claimed for i in ids]
    assert len(every) == len(set(every)) == 200


async def test_counts_show_rows_per_kind_and_state(outbox: Outbox) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    await enqueue(outbox, "case", STEP_1, STEP_1)
    assert await outbox.counts() == {("call_record", "pending"): 1, ("case", "pending"): 1}
    async with outbox.engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from outbox"))).scalar() == 2


async def test_when_the_platform_answers_again_rows_backing_off_are_sent_at_once(outbox: Outbox, clock: Clock) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    await enqueue(outbox, "call_record", STEP_1)
    rows = await outbox.claim("w1", 10, 60)
    await outbox.settle("w1", [Settled(r, State.PENDING, 503, "down", retry_at=clock.now + timedelta(seconds=50))
                               for r in rows])
    assert await outbox.claim("w1", 10, 60) == []
    assert await outbox.hasten() == 2
    assert len(await outbox.claim("w1", 10, 60)) == 2


async def test_a_refused_case_completed_again_is_sent_with_its_corrected_body(outbox: Outbox) -> None:
    await enqueue(outbox, "case", CASE_A, CASE_A)
    [case] = await outbox.claim("w1", 10, 60)
    await outbox.settle("w1", [Settled(case, State.DEAD, 422, "invalid", problems=[{"field": "summary"}])])
    async with AsyncSession(outbox.engine) as session, session.begin():
        await outbox.enqueue(session, kind="case", key=CASE_A, body={"corrected": True}, ticket_id=CASE_A)
    [again] = await outbox.claim("w1", 10, 60)
    assert (again.id, again.body, again.attempts) == (case.id, '{"corrected":true}', 1)
    [row] = await outbox.rows()
    assert row.problems is None and row.last_status is None


async def test_a_delivered_key_never_changes_its_body(outbox: Outbox) -> None:
    await enqueue(outbox, "call_record", CASE_A)
    [row] = await outbox.claim("w1", 10, 60)
    await outbox.settle("w1", [Settled(row, State.DELIVERED, 201)])
    async with AsyncSession(outbox.engine) as session, session.begin():
        await outbox.enqueue(session, kind="call_record", key=CASE_A, body={"other": 1})
    [kept] = await outbox.rows()
    assert kept.state == "delivered" and kept.body == '{"id":"8b0e7f4c-4a59-4c5e-9a43-1d7e3c6b2a01"}'
