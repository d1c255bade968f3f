"""Every case reaches the national platform exactly once, whatever the platform and our own
workers do meanwhile: random failures, dropped answers, a long outage, workers killed mid-send.
The platform is the stand-in, which enforces the whole contract; the database is real."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.settings import PlatformSettings
from delivery.models import State
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from devtools.embedded import RedisProcess
from devtools.platform_sim.faults import Faults
from devtools.platform_sim.server import PlatformSim
from national.client import Backoff
from tests.fixtures.waiting import eventually
from tests.support.documents import ORG, SECRET, case_document

pytestmark = pytest.mark.slow

#: Real seconds per platform second: the 10-minute outage lasts 3 s.
TIME_SCALE = 0.005
#: The random failures here are the ones without Retry-After: a 429 or 503 pauses every worker
#: for at least a whole second (HTTP's unit, whatever the time scale), which is the gate's
#: behaviour, tested in test_back_pressure_and_halts; here what is tested is exactly once.
#: The outage still answers 503 with Retry-After.
ANSWERS_WITHOUT_RETRY_AFTER = (500, 502, 408)


@pytest.fixture
def outbox(engine: AsyncEngine) -> Outbox:
    """On the real clock: leases and retries run out in real time here."""
    return Outbox(engine)


@pytest.fixture
async def platform() -> AsyncIterator[PlatformSim]:
    sim = PlatformSim(orgs={ORG: SECRET})
    await sim.start()
    yield sim
    await sim.stop()


def delivery_settings(platform: PlatformSim, **changes: object) -> PlatformSettings:
    return PlatformSettings(url=platform.url, org_code=ORG, secret=SECRET, timeout_s=2.0, workers=3,
                            concurrency=8, claim_batch=16, lease_s=1.0, backoff_base_s=0.01,
                            backoff_cap_s=0.3, poll_s=0.05, **changes)


async def queue_cases(outbox: Outbox, count: int, start: int = 0) -> list[str]:
    keys = []
    async with AsyncSession(outbox.engine) as session, session.begin():
        for n in range(start, start + count):
            doc = case_document(n)
            await outbox.enqueue(session, kind="case", key=doc["case_id"], body=doc, ticket_id=doc["case_id"])
            keys.append(doc["case_id"])
    return keys


async def all_delivered(outbox: Outbox, expected: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = await outbox.counts()
        if counts.get(("case", State.DELIVERED.value), 0) == expected:
            return
        if counts.get(("case", State.DEAD.value)):
            dead = await outbox.rows(state="dead", limit=3)
            raise AssertionError(f"dead rows: {[(r.key, r.last_status, r.last_error) for r in dead]}")
        if loop.time() > deadline:
            raise AssertionError(f"not all delivered after {timeout}s: {counts}")
        await asyncio.sleep(0.05)


async def test_with_30_percent_failures_a_10_minute_outage_and_killed_workers_every_case_arrives_once(
    outbox: Outbox, platform: PlatformSim
) -> None:
    platform.set_faults(Faults(error_rate=0.3, error_statuses=ANSWERS_WITHOUT_RETRY_AFTER, drop_rate=0.05,
                               drop_after_store_share=0.5, time_scale=TIME_SCALE, seed=12315))
    keys = await queue_cases(outbox, 150)
    first = PlatformDelivery(outbox, delivery_settings(platform), backoff=Backoff(0.01, 0.3))
    await first.start()
    await asyncio.sleep(0.3)
    platform.start_outage(600)
    keys += await queue_cases(outbox, 150, start=150)  # the centre keeps working meanwhile
    await asyncio.sleep(0.5)
    # Killed: the workers' tasks die mid-batch and their leases are not given back.
    for task in first.service._tasks:
        task.cancel()
    await asyncio.gather(*first.service._tasks, return_exceptions=True)
    first.service._tasks = []
    first.service.workers.clear()
    await first.stop()

    second = PlatformDelivery(outbox, delivery_settings(platform), backoff=Backoff(0.01, 0.3))
    await second.start()
    try:
        await all_delivered(outbox, len(keys), timeout=60)
    finally:
        await second.stop()

    assert platform.stats.duplicates() == []
    assert sorted(c["case_id"] for c in platform.cases()) == sorted(keys)
    assert platform.stats.conflicts == 0
    faults = platform.stats.faults_injected
    assert faults["outage"] > 0 and faults["drop_after_store"] > 0
    assert platform.stats.replayed > 0  # answers lost after storing came back as replays


def worker_process(database_url: str, platform: PlatformSim, redis_url: str,
                   redis_prefix: str) -> asyncio.subprocess.Process:
    # Redis too: the worker processes share one gate for the platform's Retry-After and halts.
    env = {**os.environ, "HOTLINE_DATABASE__URL": database_url, "HOTLINE_PLATFORM__URL": platform.url,
           "HOTLINE_REDIS__URL": redis_url, "HOTLINE_REDIS__PREFIX": redis_prefix,
           "HOTLINE_PLATFORM__ORG_CODE": ORG, "HOTLINE_PLATFORM__SECRET": SECRET,
           "HOTLINE_PLATFORM__LEASE_S": "1.0", "HOTLINE_PLATFORM__BACKOFF_BASE_S": "0.01",
           "HOTLINE_PLATFORM__BACKOFF_CAP_S": "0.3", "HOTLINE_PLATFORM__POLL_S": "0.05",
           "HOTLINE_PLATFORM__CLAIM_BATCH": "16", "HOTLINE_PLATFORM__CONCURRENCY": "8",
           "HOTLINE_LOG_LEVEL": "WARNING"}
    return asyncio.create_subprocess_exec(sys.executable, "-m", "hotline", "outbox", "work", "--workers", "2",
                                          env=env, stdout=asyncio.subprocess.DEVNULL)


async def test_worker_processes_killed_with_sigkill_mid_delivery_lose_and_double_nothing(
    outbox: Outbox, platform: PlatformSim, database_url: str, redis_server: RedisProcess, redis_prefix: str
) -> None:
    platform.set_faults(Faults(error_rate=0.3, error_statuses=ANSWERS_WITHOUT_RETRY_AFTER, latency_s=(0.0, 4.0),
                               time_scale=TIME_SCALE, seed=7))
    keys = await queue_cases(outbox, 200)
    doomed = [await worker_process(database_url, platform, redis_server.url, redis_prefix) for _ in range(2)]

    async def in_the_thick_of_it() -> bool:  # killed with requests in flight
        return platform.stats.stored >= 20

    await eventually(in_the_thick_of_it, timeout=60)
    for proc in doomed:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    survivor = await worker_process(database_url, platform, redis_server.url, redis_prefix)
    try:
        await all_delivered(outbox, len(keys), timeout=90)
    finally:
        survivor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(survivor.wait(), 20) == 0  # a clean stop on SIGTERM
    assert platform.stats.duplicates() == []
    assert sorted(c["case_id"] for c in platform.cases()) == sorted(keys)
