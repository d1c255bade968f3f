"""What the ticket tests share: a migrated database (SQLite and PostgreSQL), a clock moved by
hand, and an outbox that writes into the caller's transaction like the real one does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.db import make_engine, sessionmaker
from core.migrate import create_schema
from tickets.deadlines import WorkingCalendar
from tickets.services import TicketService

# Kept out of the application's metadata: the migrated schema must equal the models alone.
_OUTBOX_MD = MetaData()
OUTBOX = Table(
    "test_outbox", _OUTBOX_MD,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(36), nullable=False),
    Column("ticket_id", String(36)),
    Column("body", Text, nullable=False),
)


class Clock:
    def __init__(self) -> None:
        # Monday 28 September 2026, 10:00 in Beijing: just before the National Day holiday.
        self.now = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class TableOutbox:
    """Inserts each row on the caller's session, so it commits or rolls back with the ticket.
    ``fail_with`` makes the next enqueue raise after its INSERT (a broken outbox)."""

    def __init__(self) -> None:
        self.fail_with: BaseException | None = None

    async def enqueue(self, session: AsyncSession, *, kind: str, key: str, body: dict[str, Any],
                      ticket_id: str | None = None) -> None:
        await session.execute(OUTBOX.insert().values(kind=kind, key=key, ticket_id=ticket_id,
                                                     body=json.dumps(body, ensure_ascii=False)))
        if self.fail_with is not None:
            raise self.fail_with

    @staticmethod
    async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            result = await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))
            return [{**row._mapping, "body": json.loads(row.body)} for row in result]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await create_schema(engine)
    async with engine.begin() as conn:
        await conn.run_sync(_OUTBOX_MD.create_all)
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
