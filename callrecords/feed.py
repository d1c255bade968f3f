"""Ended calls' records into the outbox for the national platform, in the transaction that
writes them (the call-record side of the transactional outbox)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from callrecords.payload import call_record_payload
from delivery.models import Kind
from delivery.outbox import Outbox
from national.contract import validate_call_record

log = logging.getLogger(__name__)


class CallRecordFeed:
    """Queues each ended call's record for the platform, in the transaction that writes it.

    A record the platform's rules refuse is queued dead, with the problems, instead of being
    sent to be refused: an operator sees it in ``hotline outbox list --state dead``.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def __call__(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        ended = [row for row in rows if row.get("ended_at") is not None]
        entries = []
        for row in ended:
            body = call_record_payload(row)
            problems = validate_call_record(body, idempotency_key=row["call_id"])
            if problems:
                log.error("call record %s breaks the platform's rules and is held back: %s", row["call_id"],
                          "; ".join(f"{p.field}: {p.code}" for p in problems))
            entries.append((Kind.CALL_RECORD.value, row["call_id"], body, [p.to_dict() for p in problems] or None))
        await self._outbox.enqueue_many(conn, entries)
