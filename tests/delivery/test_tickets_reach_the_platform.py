"""An agent's completed ticket reaches the national platform (the stand-in) with its steps in
order, and a case the platform refuses comes back to the agent's ticket field by field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.platform_sim.server import PlatformSim
from tests.support.clock import SkewedClock
from tests.support.delivery import delivering_tickets
from tests.support.documents import ORG, SECRET, complaint
from tickets.models import Ticket
from tickets.services import TicketService


@pytest.fixture
def platform_clock() -> SkewedClock:
    return SkewedClock()


@pytest.fixture
async def platform(platform_clock: SkewedClock) -> AsyncIterator[PlatformSim]:
    sim = PlatformSim(orgs={ORG: SECRET}, clock=platform_clock)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def desk(engine: AsyncEngine, platform: PlatformSim) -> AsyncIterator[TicketService]:
    """Tickets as `hotline serve` wires them: outbox, ticket hook, delivery workers."""
    async with delivering_tickets(engine, platform.url) as (tickets, _outbox):
        yield tickets


async def eventually(tickets: TicketService, ticket_id: str, check: Callable[[Ticket], bool]) -> Ticket:
    for _ in range(200):
        ticket = await tickets.get(ticket_id)
        if check(ticket):
            return ticket
        await asyncio.sleep(0.025)
    raise AssertionError(f"ticket {ticket_id} never got there: {ticket.delivery_state} {ticket.delivery_problems}")


async def test_a_completed_complaint_and_its_steps_reach_the_platform_in_order(
    desk: TicketService, platform: PlatformSim
) -> None:
    draft = await desk.create(complaint(), by="a1001")
    done = await desk.complete(draft.id, by="a1001", version=draft.version)
    await desk.progress(done.id, "accepted", by="a1001")
    await desk.progress(done.id, "closed", by="a1001", outcome="mediated", note="商家同意退货")
    delivered = await eventually(desk, done.id, lambda t: t.platform_case_no is not None)
    assert delivered.delivery_state == "delivered"

    async def steps_recorded() -> list[str]:
        [case] = platform.cases()
        return [s["step"] for s in case["progress"]]

    for _ in range(200):
        if await steps_recorded() == ["accepted", "closed"]:
            break
        await asyncio.sleep(0.025)
    assert await steps_recorded() == ["accepted", "closed"]
    [case] = platform.cases()
    assert case["case_id"] == done.id and case["platform_case_no"] == delivered.platform_case_no
    assert platform.stats.conflicts == 0


async def test_a_case_the_platform_refuses_reaches_the_agents_ticket_with_field_details(
    desk: TicketService, platform: PlatformSim, platform_clock: SkewedClock
) -> None:
    # Our clock and the platform's disagree by four minutes: a call received "just now" here is
    # still within our own five-minute rule, but more than five minutes in the platform's future.
    platform_clock.behind_s = 240
    received = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 90))
    draft = await desk.create(complaint(received_at=received), by="a1001")
    assert await desk.validate(draft.id) == []  # our check passes: nothing to see while on the call
    await desk.complete(draft.id, by="a1001", version=draft.version)

    refused = await eventually(desk, draft.id, lambda t: t.delivery_state == "refused")
    [problem] = refused.delivery_problems
    assert (problem["field"], problem["code"]) == ("received_at", "in_future")
    assert refused.status == "draft"  # back with the agent, to correct and complete again
    assert platform.cases() == []

    platform_clock.behind_s = 0  # clocks agree again; the agent completes it once more
    again = await desk.complete(draft.id, by="a1001", version=refused.version)
    delivered = await eventually(desk, again.id, lambda t: t.delivery_state == "delivered")
    assert delivered.platform_case_no and delivered.delivery_problems is None
    assert len(platform.cases()) == 1
