"""An outbox for the ticket service's tests that writes into the caller's transaction like the
real one does, in a table of its own."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# Kept out of the application's metadata: the migrated schema must equal the models alone.
OUTBOX_METADATA = MetaData()
OUTBOX = Table(
    "test_outbox", OUTBOX_METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(36), nullable=False),
    Column("ticket_id", String(36)),
    Column("body", Text, nullable=False),
)


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
