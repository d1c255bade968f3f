"""Every ended call's record is owed to the platform from the moment it is saved."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callrecords.feed import CallRecordFeed
from callrecords.payload import call_record_payload, handling_org
from callrecords.services import CallRecordWriter
from delivery.outbox import Outbox
from national.contract import validate_call_record

CALL = "2c9f3b1e-5d4a-4f6b-8e7c-9a0b1c2d3e4f"
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "call_id": CALL, "channel_id": "1790000000.1", "hotline_number": "12331", "business_line": "food_drug",
        "area_code": "0571", "caller_phone": "13800138000", "started_at": T0,
        "queued_at": T0 + timedelta(seconds=20), "answered_at": T0 + timedelta(seconds=50),
        "ended_at": T0 + timedelta(seconds=300), "menu_path": ["main_menu:1"], "choice": "complaint",
        "recognized_by": "dtmf", "transcript": None, "confidence": None, "outcome": "answered",
        "state": "ended", "agent_id": "1001", "jurisdiction": "330100", "hangup_cause": "normal",
    }
    base.update(changes)
    return base


def test_an_answered_call_is_a_valid_platform_call_record_in_china_time() -> None:
    body = call_record_payload(record())
    assert validate_call_record(body, idempotency_key=CALL) == []
    assert body["started_at"] == "2026-11-24T09:00:00+08:00"
    assert body["handling"] == {"region": "330100", "level": "city"}
    assert body["outcome"] == "answered" and body["agent_id"] == "1001"


def test_a_booked_callback_is_reported_as_a_callback_request_and_a_withheld_number_is_left_out() -> None:
    body = call_record_payload(record(outcome="callback_booked", caller_phone="anonymous", answered_at=None,
                                      agent_id=None))
    assert body["outcome"] == "callback_requested" and "caller_phone" not in body
    assert validate_call_record(body) == []


@pytest.mark.parametrize("outcome", ["self_service", "transferred_out"])
def test_a_call_that_ended_without_an_agent_in_a_contract_1_1_outcome_is_a_valid_record(outcome: str) -> None:
    # Our calls do not end these ways yet; should one, what the builder makes must be valid.
    body = call_record_payload(record(outcome=outcome, queued_at=None, answered_at=None, agent_id=None))
    assert body["outcome"] == outcome and "agent_id" not in body and "answered_at" not in body
    assert validate_call_record(body, idempotency_key=CALL) == []


def test_jurisdictions_become_the_platforms_handling_organisations() -> None:
    assert handling_org("000000") == {"region": "000000", "level": "national"}
    assert handling_org("330000") == {"region": "330000", "level": "province"}
    assert handling_org("330106") == {"region": "330106", "level": "county"}
    assert handling_org("330106-07") == {"region": "330106", "level": "station", "station": "007"}
    assert handling_org(None) is None


async def test_an_ended_call_is_queued_for_the_platform_in_the_transaction_that_saves_it(
    engine: AsyncEngine, outbox: Outbox
) -> None:
    writer = CallRecordWriter(engine, after_write=CallRecordFeed(outbox))
    writer.start()
    writer.save(record(ended_at=None, outcome=None, state="connected"))  # still talking: nothing owed yet
    await writer.flush()
    assert await outbox.rows() == []
    assert not outbox.wakeup.is_set()  # the delivery workers have nothing to look for
    writer.save(record())
    writer.save(record())  # the same snapshot saved twice is still one record
    await writer.flush()
    assert outbox.wakeup.is_set()  # committed: the workers look at once
    await writer.close()
    [row] = await outbox.rows()
    assert (row.kind, row.key, row.state) == ("call_record", CALL, "pending")
    assert json.loads(row.body)["outcome"] == "answered"


async def test_a_record_that_breaks_the_platforms_rules_is_held_back_dead_with_its_problems(
    engine: AsyncEngine, outbox: Outbox
) -> None:
    writer = CallRecordWriter(engine, after_write=CallRecordFeed(outbox))
    writer.start()
    writer.save(record(agent_id=None))  # answered, but by whom?
    await writer.close()
    [row] = await outbox.rows()
    assert row.state == "dead"
    assert {"field": "agent_id", "code": "required"}.items() <= row.problems[0].items()
