"""What the queue engine's tests share: a clock they move by hand and the engine on it (the
Redis client is the shared ``redis`` fixture of ``tests/fixtures/servers.py``). ``engine`` here
is the queue engine: no test in this folder uses the database engine of the same name."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from queues.engine import QueueEngine
from tests.support.clock import MillisClock


@pytest.fixture
def clock() -> MillisClock:
    return MillisClock()


@pytest.fixture
def engine(redis: Redis, redis_prefix: str, clock: MillisClock) -> QueueEngine:
    return QueueEngine(redis, redis_prefix, clock_ms=clock)
