"""A platform reached under a base path (``http://host/gateway/12315/api``) verifies every
signature over the operation's path relative to its URL (contract 1.0.1): our delivery signs
``/v1/cases``, never the base path too, so a centre's cases, their steps and its call records
are all accepted there, and a request signed the old way is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callrecords.feed import CallRecordFeed
from callrecords.services import CallRecordWriter
from delivery.models import Kind, State
from delivery.outbox import Outbox
from devtools.platform_sim.server import PlatformSim
from tests.fixtures.waiting import eventually
from tests.support.clock import EpochClock
from tests.support.delivery import delivering_tickets
from tests.support.documents import CALL_ID, ORG, SECRET, a_case, complaint
from tests.support.national import PlatformContract, TrafficChecker, assert_clean, post_case
from tickets.services import TicketService

#: Where a provincial gateway might put the platform: three segments the signatures never see.
BASE_PATH = "/gateway/12315/api"


@dataclass
class Centre:
    """A hotline centre as `hotline serve` wires its delivery: tickets and call records
    queued in the outbox, the delivery workers sending them to the platform."""

    tickets: TicketService
    calls: CallRecordWriter
    outbox: Outbox


@pytest.fixture
def traffic() -> TrafficChecker:
    return TrafficChecker(PlatformContract.load(), base_path=BASE_PATH)


@pytest.fixture
async def platform(traffic: TrafficChecker) -> AsyncIterator[PlatformSim]:
    sim = PlatformSim(orgs={ORG: SECRET}, base_path=BASE_PATH, observer=traffic)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def centre(engine: AsyncEngine, platform: PlatformSim) -> AsyncIterator[Centre]:
    async with delivering_tickets(engine, platform.url) as (tickets, outbox):
        calls = CallRecordWriter(engine, after_write=CallRecordFeed(outbox))
        calls.start()
        yield Centre(tickets, calls, outbox)
    await calls.close()


def an_answered_call(call_id: str, ended: datetime) -> dict[str, object]:
    """The call record's row as the call core saves it when the caller hangs up."""
    started = ended - timedelta(minutes=5)
    return {
        "call_id": call_id, "channel_id": "1790000000.1", "hotline_number": "12315", "business_line": "general",
        "area_code": "0571", "caller_phone": "13812345678", "started_at": started,
        "queued_at": started + timedelta(seconds=20), "answered_at": started + timedelta(seconds=50),
        "ended_at": ended, "menu_path": ["main_menu:1"], "choice": "complaint", "recognized_by": "dtmf",
        "transcript": None, "confidence": None, "outcome": "answered", "state": "ended", "agent_id": "a1001",
        "jurisdiction": "330106", "hangup_cause": "normal",
    }


async def test_cases_steps_and_call_records_are_accepted_by_a_platform_under_a_base_path(
    centre: Centre, platform: PlatformSim, traffic: TrafficChecker
) -> None:
    centre.calls.save(an_answered_call(CALL_ID, datetime.now(UTC) - timedelta(seconds=10)))
    draft = await centre.tickets.create(complaint(), by="a1001")
    done = await centre.tickets.complete(draft.id, by="a1001", version=draft.version)
    await centre.tickets.progress(done.id, "accepted", by="a1001")
    await centre.tickets.progress(done.id, "closed", by="a1001", outcome="mediated", note="商家同意退货")

    async def everything_delivered() -> bool:
        counts = await centre.outbox.counts()
        return all(counts.get((kind, State.DELIVERED.value)) == n
                   for kind, n in ((Kind.CASE, 1), (Kind.PROGRESS, 2), (Kind.CALL_RECORD, 1)))

    await eventually(everything_delivered, timeout=10)
    [case] = platform.cases()
    assert case["case_id"] == done.id and [s["step"] for s in case["progress"]] == ["accepted", "closed"]
    assert [r["call_id"] for r in platform.call_records()] == [CALL_ID]
    assert (await centre.tickets.get(done.id)).platform_case_no == case["platform_case_no"]
    assert platform.stats.unauthorized == 0
    assert {ex.path.removeprefix(BASE_PATH).split("/")[2] for ex in traffic.exchanges} == {"cases", "call-records"}
    assert_clean(traffic.request_violations() + traffic.response_violations())


async def test_a_request_signed_over_the_base_path_too_is_refused_there(
    platform: PlatformSim, traffic: TrafficChecker
) -> None:
    clock = EpochClock()
    async with aiohttp.ClientSession() as http:
        status, _, body = await post_case(http, platform.url, a_case(clock), clock=clock,
                                          sign_path=BASE_PATH + "/v1/cases")
    assert (status, body["errors"][0]["field"], body["errors"][0]["code"]) == (401, "X-Signature", "bad_signature")
    assert platform.cases() == [] and platform.stats.unauthorized == 1
    assert_clean(traffic.response_violations())
