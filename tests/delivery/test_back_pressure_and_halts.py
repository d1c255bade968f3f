"""What the platform says about all of our requests holds for every worker of every process:
a ``Retry-After`` (no request of ours arrives before it has passed) and a refusal of our
credentials or URL (delivery halts for everyone, nothing is dead-lettered, the operators are
told what to fix, and everything goes once it is fixed). A refusal of a case's fields goes
back to the agent; a change to a case the platform already has is refused, never dropped.
Against the platform stand-in, on a real database and a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import sessionmaker
from core.settings import PlatformSettings, Settings, load_settings
from delivery.cli import main as outbox_command
from delivery.feeds import TicketResults
from delivery.gate import RedisGate
from delivery.models import OutboxRow, State
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from devtools.embedded import RedisProcess
from devtools.platform_sim.server import PlatformSim
from national.client import Backoff, PlatformClient
from tests.fixtures.waiting import eventually
from tests.support.clock import SkewedClock
from tests.support.documents import ORG, SECRET, case_document, complaint
from tickets.deadlines import official_calendar
from tickets.models import Ticket
from tickets.services import CaseAlreadySent, TicketNotEditable, TicketService

#: The stand-in's rate limit, as in the field report (we sent ~82/s against it).
RATE_PER_S = 20.0
#: How long after a Retry-After a request may still arrive because it had left before it (on a
#: loaded 2-core machine a burst on its way took 0.32 s on loopback). Half the stand-in's 1 s
#: Retry-After: a sender that ignored the pause would still be caught in the other half.
IN_FLIGHT_GRACE_S = 0.5


@pytest.fixture
def outbox(engine: AsyncEngine) -> Outbox:
    """On the real clock: retries and probes run out in real time here."""
    return Outbox(engine)


def settings_for(url: str, *, secret: str = SECRET, **changes: Any) -> PlatformSettings:
    values: dict[str, Any] = dict(url=url, org_code=ORG, secret=secret, timeout_s=5.0, workers=3, concurrency=8,
                                  claim_batch=16, lease_s=10.0, backoff_base_s=0.01, backoff_cap_s=0.3,
                                  poll_s=0.05, probe_s=0.3)
    values.update(changes)
    return PlatformSettings(**values)


def delivery(outbox: Outbox, settings: PlatformSettings, redis: Redis, prefix: str) -> PlatformDelivery:
    """As `hotline serve` and `hotline outbox work` build it: the gate in Redis."""
    return PlatformDelivery(outbox, settings, backoff=Backoff(0.01, 0.3), gate=RedisGate(redis, prefix, settings))


async def queue_cases(outbox: Outbox, count: int) -> list[str]:
    keys = []
    async with AsyncSession(outbox.engine) as session, session.begin():
        for n in range(count):
            doc = case_document(n)
            await outbox.enqueue(session, kind="case", key=doc["case_id"], body=doc, ticket_id=doc["case_id"])
            keys.append(doc["case_id"])
    return keys


async def delivered(outbox: Outbox, expected: int) -> bool:
    counts = await outbox.counts()
    assert not counts.get(("case", State.DEAD.value)), "a row was dead-lettered"
    return counts.get(("case", State.DELIVERED.value), 0) == expected


#: How long the loop must have run without a hold before a request it notes counts as sent
#: after that span began: when it comes back from a hold, the beat's timer may run before the
#: handlers of the requests that waited (in one failed run, a beat 0.2 ms ahead of a burst
#: noted 0.70 s after a Retry-After, all sent before the hold).
STEADY_S = 0.1
#: A gap between two beats longer than this is a hold (a beat is due every 10 ms).
HOLD_S = 0.05


class LoopPulse:
    """When this process's event loop ran without being held up, on the stand-in's clock (a
    beat every 10 ms while it does). The stand-in runs on this loop and notes a request when its
    handler runs: a request that reached the socket while the loop was held up (a garbage
    collection of a long test process, the other test worker on the second core) is noted when
    the loop comes back, together with every other one that waited (in one failed run, a burst
    noted within 1 ms, 0.58 s after a Retry-After, against the 0.5 s grace)."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopPulse:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _beat(self) -> None:
        while True:
            self.beats.append(time.time())
            await asyncio.sleep(0.01)

    def steady_within(self, start: float, end: float) -> bool:
        """Whether the loop beat without a hold for ``STEADY_S`` somewhere between ``start``
        and ``end``: then a request noted after ``end`` reached the socket after ``start``."""
        run_from: float | None = None
        last = start
        for beat in self.beats:
            if beat <= start:
                continue
            if beat >= end:
                break
            if run_from is None or beat - last > HOLD_S:
                run_from = beat
            elif beat - run_from >= STEADY_S:
                return True
            last = beat
        return False


def early_arrivals(platform: PlatformSim, grace_s: float, pulse: LoopPulse) -> tuple[list[tuple[float, float]], int]:
    """From the stand-in's own log: requests that arrived while a ``Retry-After`` it had sent
    was running, later than ``grace_s`` after it (``(told_at, arrived_at)``), and the most
    that arrived within ``grace_s`` of one. Those are requests already on their way when the
    platform answered: no sender can call back what has left; it must send nothing after. A
    request noted later than the grace counts only if the loop ran without a hold for a while
    between the grace's end and its noting (``pulse``): otherwise it may have been waiting for
    the loop since before."""
    log = platform.stats.arrivals
    assert log is not None
    late: list[tuple[float, float]] = []
    most_in_flight = 0
    for told in (a for a in log if a.status in (429, 503) and a.retry_after_s):
        assert told.retry_after_s is not None
        until = told.at + told.retry_after_s
        within = [a for a in log if told.at < a.at < until]
        late += [(told.at, a.at) for a in within
                 if a.at > told.at + grace_s and pulse.steady_within(told.at + grace_s, a.at)]
        most_in_flight = max(most_in_flight, len(within) - len([a for a in within if a.at > told.at + grace_s]))
    return late, most_in_flight


def test_requests_noted_as_the_loop_comes_back_from_a_hold_are_not_taken_for_late_ones() -> None:
    pulse = LoopPulse()
    # Beats every 10 ms up to 10.0, the loop held until 10.7, then beating again.
    pulse.beats = [9.0 + i * 0.01 for i in range(101)] + [10.7 + i * 0.01 for i in range(31)]
    assert not pulse.steady_within(10.5, 10.7002)  # the burst noted right after the hold
    assert not pulse.steady_within(10.5, 10.75)  # still catching up
    assert pulse.steady_within(10.5, 10.85)  # noted after 100 ms of steady beats: sent late
    assert pulse.steady_within(9.5, 9.65)  # no hold at all


@pytest.mark.slow
async def test_two_deliveries_under_a_rate_limit_send_nothing_before_a_retry_after_has_passed(
    outbox: Outbox, redis: Redis, redis_prefix: str
) -> None:
    platform = PlatformSim(orgs={ORG: SECRET}, rate_limit_per_s=RATE_PER_S, record_arrivals=True)
    await platform.start()
    keys = await queue_cases(outbox, 150)
    # Two independent deliveries (as two processes: their own workers, client and session),
    # sharing only the gate in Redis.
    both = [delivery(Outbox(outbox.engine), settings_for(platform.url), redis, redis_prefix) for _ in range(2)]
    try:
        async with LoopPulse() as pulse:
            for one in both:
                await one.start()
            await eventually(lambda: delivered(outbox, len(keys)), timeout=90)
    finally:
        for one in both:
            await one.stop()
        await platform.stop()

    assert platform.stats.rate_limited > 0  # the limit was met, so Retry-After was said
    in_flight = 2 * 3 * 8  # deliveries x workers x concurrency: what may be on its way at once
    late, most = early_arrivals(platform, IN_FLIGHT_GRACE_S, pulse)
    assert late == [], f"{len({a for _, a in late})} request(s) arrived before a Retry-After had passed: {late[:5]}"
    assert most <= in_flight
    assert platform.stats.duplicates() == []
    assert sorted(c["case_id"] for c in platform.cases()) == sorted(keys)


def worker_process(database_url: str, platform: PlatformSim, redis_server: RedisProcess,
                   prefix: str) -> Awaitable[asyncio.subprocess.Process]:
    """``hotline outbox work``: a process of its own, sharing with us the database and Redis."""
    env = {**os.environ, "HOTLINE_DATABASE__URL": database_url, "HOTLINE_PLATFORM__URL": platform.url,
           "HOTLINE_PLATFORM__ORG_CODE": ORG, "HOTLINE_PLATFORM__SECRET": SECRET,
           "HOTLINE_REDIS__URL": redis_server.url, "HOTLINE_REDIS__PREFIX": prefix,
           "HOTLINE_PLATFORM__LEASE_S": "10", "HOTLINE_PLATFORM__BACKOFF_BASE_S": "0.01",
           "HOTLINE_PLATFORM__BACKOFF_CAP_S": "0.3", "HOTLINE_PLATFORM__POLL_S": "0.05",
           "HOTLINE_PLATFORM__CLAIM_BATCH": "16", "HOTLINE_PLATFORM__CONCURRENCY": "8",
           "HOTLINE_LOG_LEVEL": "WARNING"}
    return asyncio.create_subprocess_exec(sys.executable, "-m", "hotline", "outbox", "work", "--workers", "3",
                                          env=env, stdout=asyncio.subprocess.DEVNULL)


@pytest.mark.slow
async def test_a_worker_process_and_the_apps_workers_share_one_retry_after(
    outbox: Outbox, redis: Redis, redis_prefix: str, redis_server: RedisProcess, database_url: str
) -> None:
    platform = PlatformSim(orgs={ORG: SECRET}, rate_limit_per_s=RATE_PER_S, record_arrivals=True)
    await platform.start()
    keys = await queue_cases(outbox, 150)
    ours = delivery(outbox, settings_for(platform.url), redis, redis_prefix)
    process = await worker_process(database_url, platform, redis_server, redis_prefix)
    try:
        async with LoopPulse() as pulse:
            await ours.start()
            await eventually(lambda: delivered(outbox, len(keys)), timeout=90)
    finally:
        await ours.stop()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
        await platform.stop()

    assert platform.stats.rate_limited > 0
    late, most = early_arrivals(platform, IN_FLIGHT_GRACE_S, pulse)
    assert late == [], f"{len({a for _, a in late})} request(s) arrived before a Retry-After had passed: {late[:5]}"
    assert most <= 2 * 3 * 8
    assert platform.stats.duplicates() == []
    assert sorted(c["case_id"] for c in platform.cases()) == sorted(keys)


# --------------------------------------------------------------------------- refusals by kind


@pytest.fixture
def platform_clock() -> SkewedClock:
    return SkewedClock()


@pytest.fixture
async def platform(platform_clock: SkewedClock) -> AsyncIterator[PlatformSim]:
    sim = PlatformSim(orgs={ORG: SECRET}, record_arrivals=True, clock=platform_clock)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def tickets(outbox: Outbox) -> TicketService:
    """As `hotline serve` wires them: what the platform answers is written on the ticket."""
    service = TicketService(sessionmaker(outbox.engine), outbox, calendar=official_calendar())
    outbox.hooks.append(TicketResults(service))
    return service


async def completed_tickets(tickets: TicketService, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        draft = await tickets.create(complaint(), by="a1001")
        ids.append((await tickets.complete(draft.id, by="a1001", version=draft.version)).id)
    return ids


async def all_delivered(tickets: TicketService, ids: list[str]) -> bool:
    states = [(await tickets.get(i)).delivery_state for i in ids]
    return all(s == "delivered" for s in states)


def operator_settings(database_url: str, redis_server: RedisProcess, prefix: str,
                      platform: PlatformSettings) -> Settings:
    return load_settings(profile="test", database={"url": database_url},
                         redis={"url": redis_server.url, "prefix": prefix}, platform=platform.model_dump())


async def outbox_stats(settings: Settings) -> str:
    out = io.StringIO()
    # The command runs its own event loop, as at an operator's shell.
    assert await asyncio.to_thread(outbox_command, settings, ["stats"], out) == 0
    return out.getvalue()


async def all_given_back(outbox: Outbox) -> bool:
    """Every row back in the table, none leased: the workers are idle."""
    rows = await outbox.rows(limit=1000)
    return bool(rows) and all(r.lease_owner is None for r in rows)


async def halted(gate: RedisGate) -> Any:
    return (await gate.state())[1]


async def test_a_case_the_platform_refuses_for_its_fields_goes_back_to_the_agent_and_the_rest_flows(
    outbox: Outbox, tickets: TicketService, platform: PlatformSim, platform_clock: SkewedClock, redis: Redis,
    redis_prefix: str
) -> None:
    # The platform's clock is four minutes behind ours: a call received "in 90 s" passes our
    # own five-minute rule but is more than five minutes in the platform's future (422).
    platform_clock.behind_s = 240
    good = await completed_tickets(tickets, 2)
    received = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 90))
    draft = await tickets.create(complaint(received_at=received), by="a1001")
    bad = await tickets.complete(draft.id, by="a1001", version=draft.version)

    settings = settings_for(platform.url)
    one = delivery(outbox, settings, redis, redis_prefix)
    await one.start()
    try:
        await eventually(lambda: all_delivered(tickets, good), timeout=20)

        async def refused() -> Ticket | None:
            ticket = await tickets.get(bad.id)
            return ticket if ticket.delivery_state == "refused" else None

        ticket = await eventually(refused, timeout=20)
    finally:
        await one.stop()
    assert ticket.status == "draft"  # back with the agent, with the platform's own words
    assert [(p["field"], p["code"]) for p in ticket.delivery_problems or []] == [("received_at", "in_future")]
    assert await halted(RedisGate(redis, redis_prefix, settings)) is None  # no reason to stop the others
    assert len(platform.cases()) == 2


async def test_a_wrong_secret_halts_delivery_for_everyone_until_the_platform_accepts_it(
    outbox: Outbox, tickets: TicketService, platform: PlatformSim, redis: Redis, redis_prefix: str,
    redis_server: RedisProcess, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    platform.set_secret(ORG, "the-secret-the-platform-has")  # ours is not the one it knows
    ids = await completed_tickets(tickets, 5)
    settings = settings_for(platform.url)
    gate = RedisGate(redis, redis_prefix, settings)
    one = delivery(outbox, settings, redis, redis_prefix)
    caplog.set_level(logging.ERROR, logger="delivery.services")
    await one.start()
    try:
        halt = await eventually(lambda: halted(gate), timeout=20)
        assert halt.status == 401 and "secret" in halt.fix
        # The operators are told what to fix (logged just after the halt is set); `hotline
        # outbox stats` says it too.
        async def told() -> bool:
            return any("HALTED" in r.getMessage() and "HOTLINE_PLATFORM__SECRET" in r.getMessage()
                       for r in caplog.records if r.levelno == logging.ERROR)

        await eventually(told, timeout=5)
        stats = await outbox_stats(operator_settings(database_url, redis_server, redis_prefix, settings))
        assert "DELIVERY HALTED" in stats and "401" in stats and "HOTLINE_PLATFORM__SECRET" in stats

        # While halted only a probe goes out now and then: not every row, again and again.
        before = len(platform.stats.arrivals or [])
        await asyncio.sleep(1.5)
        probes = len(platform.stats.arrivals or []) - before
        assert 1 <= probes <= 1.5 / settings.probe_s + 2
        counts = await outbox.counts()
        assert counts.get(("case", State.DEAD.value), 0) == 0  # nothing dead-lettered for it
        for ticket_id in ids:  # the agents' tickets are untouched: completed, waiting
            ticket = await tickets.get(ticket_id)
            assert (ticket.status, ticket.delivery_state) == ("completed", "pending")

        platform.set_secret(ORG, SECRET)  # the platform installs the secret it issued us
        await eventually(lambda: all_delivered(tickets, ids), timeout=20)
    finally:
        await one.stop()
    assert await halted(gate) is None
    assert platform.stats.duplicates() == [] and len(platform.cases()) == len(ids)
    stats = await outbox_stats(operator_settings(database_url, redis_server, redis_prefix, settings))
    assert "HALTED" not in stats


async def test_a_wrong_base_url_halts_delivery_and_a_process_with_the_right_one_sends_everything(
    outbox: Outbox, tickets: TicketService, platform: PlatformSim, redis: Redis, redis_prefix: str,
    redis_server: RedisProcess, database_url: str
) -> None:
    ids = await completed_tickets(tickets, 4)
    wrong = settings_for(platform.root_url + "/v2", probe_s=60.0)  # the next probe would be a minute away
    gate = RedisGate(redis, redis_prefix, wrong)
    first = delivery(outbox, wrong, redis, redis_prefix)
    await first.start()
    try:
        halt = await eventually(lambda: halted(gate), timeout=20)
        await eventually(lambda: all_given_back(outbox), timeout=20)  # stopped at rest, not mid-transaction
    finally:
        await first.stop()
    assert halt.status == 404 and "HOTLINE_PLATFORM__URL" in halt.fix
    stats = await outbox_stats(operator_settings(database_url, redis_server, redis_prefix, wrong))
    assert "DELIVERY HALTED" in stats and "/v2" in stats
    assert (await outbox.counts()).get(("case", State.DEAD.value), 0) == 0
    assert platform.cases() == []

    # The operator corrects the URL and starts delivery again: the halt was set by another
    # configuration, so the new one is tried at once, not a minute later.
    right = settings_for(platform.url, probe_s=60.0)
    second = delivery(outbox, right, redis, redis_prefix)
    await second.start()
    try:
        await eventually(lambda: all_delivered(tickets, ids), timeout=20)
    finally:
        await second.stop()
    assert await halted(gate) is None
    assert platform.stats.duplicates() == [] and len(platform.cases()) == len(ids)


async def test_a_change_to_a_case_the_platform_has_is_refused_to_the_agent_never_dropped(
    outbox: Outbox, tickets: TicketService, platform: PlatformSim, redis: Redis, redis_prefix: str
) -> None:
    [ticket_id] = await completed_tickets(tickets, 1)
    one = delivery(outbox, settings_for(platform.url), redis, redis_prefix)
    await one.start()
    try:
        await eventually(lambda: all_delivered(tickets, [ticket_id]), timeout=20)
    finally:
        await one.stop()
    sent = await tickets.get(ticket_id)
    assert sent.platform_case_no

    # A refusal that comes after the delivery (a worker whose lease ran out while another
    # delivered the row) does not send the ticket back to the agent as if it could be changed.
    await tickets.record_delivery(ticket_id, problems=[{"field": "summary", "code": "too_short", "message": "x"}])
    still = await tickets.get(ticket_id)
    assert (still.status, still.delivery_state) == ("completed", "delivered")
    with pytest.raises(TicketNotEditable):
        await tickets.update(ticket_id, {"summary": "商家已同意退货，补充说明。"}, by="a1001", version=still.version)

    # A draft left by such a refusal before this was fixed: its correction is refused with
    # the reason and the platform's number, not queued under a key the platform has (where it
    # would never be sent), and what the platform has stays as it is.
    async with outbox.engine.begin() as conn:
        await conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(status="draft"))
    draft = await tickets.get(ticket_id)
    edited = await tickets.update(ticket_id, {"summary": "商家已同意退货，补充说明。"}, by="a1001",
                                  version=draft.version)
    with pytest.raises(CaseAlreadySent) as refused:
        await tickets.complete(ticket_id, by="a1001", version=edited.version)
    assert sent.platform_case_no in str(refused.value) and "progress step" in str(refused.value)
    assert (await tickets.get(ticket_id)).status == "draft"  # the completion was rolled back
    [case] = platform.cases()
    assert case["summary"] == sent.summary
    [row] = await outbox.rows(kind="case")
    assert row.state == State.DELIVERED.value and "补充说明" not in row.body


async def test_a_case_the_platform_has_in_an_earlier_version_comes_back_to_the_agent_with_that_reason(
    outbox: Outbox, tickets: TicketService, platform: PlatformSim, redis: Redis, redis_prefix: str
) -> None:
    [ticket_id] = await completed_tickets(tickets, 1)
    # An earlier version of the case reached the platform and its answer was lost: the
    # platform holds this case_id with another body, and answers ours with a 409.
    [row] = await outbox.rows(kind="case")
    earlier = {**json.loads(row.body), "summary": "更早的版本：电水壶漏电，尚未联系商家。"}
    async with aiohttp.ClientSession() as http:
        sent = await PlatformClient(platform.url, ORG, SECRET, http).submit_case(earlier, ticket_id)
    assert sent.status == 201

    one = delivery(outbox, settings_for(platform.url), redis, redis_prefix)
    await one.start()
    try:
        async def refused() -> Ticket | None:
            ticket = await tickets.get(ticket_id)
            return ticket if ticket.delivery_state == "refused" else None

        ticket = await eventually(refused, timeout=20)
    finally:
        await one.stop()
    # Not the platform's words about an Idempotency-Key: why, and what the agent can do.
    [problem] = ticket.delivery_problems or []
    assert problem["code"] == "already_delivered" and "cannot amend" in problem["message"]
    assert "progress step" in problem["message"] and problem["message_zh"]
    [case] = platform.cases()
    assert case["summary"] == earlier["summary"]  # what the platform has stays as it is


async def test_a_step_of_a_case_the_platform_lost_is_dead_lettered_without_stopping_the_rest(
    outbox: Outbox, platform: PlatformSim, redis: Redis, redis_prefix: str
) -> None:
    keys = await queue_cases(outbox, 3)
    # A case we delivered and the platform no longer has (its number unknown there), with a
    # step queued after it: the platform answers the step 404, as it would a wrong URL.
    lost = str(uuid.uuid4())
    async with AsyncSession(outbox.engine) as session, session.begin():
        await outbox.enqueue(session, kind="case", key=lost, body=case_document(99, case_id=lost), ticket_id=lost)
        await outbox.enqueue(session, kind="progress", key=str(uuid.uuid4()), ticket_id=lost,
                             body={"step_id": str(uuid.uuid4()), "step": "accepted", "at": "2026-11-24T10:00:00+08:00"})
    async with outbox.engine.begin() as conn:
        await conn.execute(update(OutboxRow).where(OutboxRow.key == lost).values(
            state=State.DELIVERED.value, receipt={"platform_case_no": "1231520261124999999"}))
    settings = settings_for(platform.url)
    one = delivery(outbox, settings, redis, redis_prefix)
    await one.start()
    try:
        await eventually(lambda: delivered(outbox, len(keys) + 1), timeout=20)

        async def dead_step() -> list[OutboxRow]:
            return await outbox.rows(state="dead", kind="progress")

        [step] = await eventually(dead_step, timeout=20)
    finally:
        await one.stop()
    # Twice 404 while the platform took our other requests: it is about that case, said so.
    assert step.last_status == 404 and "no case 1231520261124999999" in (step.last_error or "")
    assert await halted(RedisGate(redis, redis_prefix, settings)) is None
    assert sorted(c["case_id"] for c in platform.cases()) == sorted(keys)

