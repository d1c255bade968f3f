"""Fixtures for the national platform: its contract, a running stand-in whose every answer
is checked against that contract, and our client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from devtools.platform_sim import PlatformSim
from national.client import PlatformClient
from tests.support.clock import EpochClock
from tests.support.documents import ORG, OTHER_ORG, OTHER_SECRET, SECRET
from tests.support.national import PlatformContract, TrafficChecker, assert_clean


@pytest.fixture(scope="session")
def platform_contract() -> PlatformContract:
    return PlatformContract.load()


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock()


@pytest.fixture
def traffic(platform_contract: PlatformContract) -> TrafficChecker:
    return TrafficChecker(platform_contract)


@pytest.fixture
async def platform(clock: EpochClock, traffic: TrafficChecker) -> AsyncIterator[PlatformSim]:
    """A running stand-in on the test's clock; the test fails if any answer broke the contract."""
    sim = PlatformSim(orgs={ORG: SECRET, OTHER_ORG: OTHER_SECRET}, clock=clock, observer=traffic)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
    assert_clean(traffic.response_violations())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def client(platform: PlatformSim, http: aiohttp.ClientSession, clock: EpochClock) -> PlatformClient:
    return PlatformClient(platform.url, ORG, SECRET, http, timeout_s=5.0, clock=clock)
