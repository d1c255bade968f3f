"""What the ticket tests share: a migrated database (SQLite and PostgreSQL), a clock moved by
hand, and an outbox that writes into the caller's transaction like the real one does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine, sessionmaker
from core.migrate import create_schema
from tests.support.clock import Clock
from tests.support.tickets import OUTBOX_METADATA, TableOutbox
from tickets.deadlines import WorkingCalendar
from tickets.services import TicketService

#: Monday 28 September 2026, 10:00 in Beijing: just before the National Day holiday.
BEFORE_NATIONAL_DAY = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(BEFORE_NATIONAL_DAY)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await create_schema(engine)
    async with engine.begin() as conn:
        await conn.run_sync(OUTBOX_METADATA.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def outbox() -> TableOutbox:
    return TableOutbox()


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.official()


@pytest.fixture
def service(engine: AsyncEngine, outbox: TableOutbox, clock: Clock, calendar: WorkingCalendar) -> TicketService:
    return TicketService(sessionmaker(engine), outbox, clock=clock, calendar=calendar)
