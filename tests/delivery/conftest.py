"""What the delivery tests share: an outbox on a real database (SQLite and PostgreSQL), a
clock moved by hand."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from delivery.outbox import Outbox
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(engine: AsyncEngine, clock: Clock) -> Outbox:
    return Outbox(engine, clock=clock)
