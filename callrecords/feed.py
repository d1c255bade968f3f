"""Ended calls' records into the outbox for the national platform, in the transaction that
writes them (the call-record side of the transactional outbox)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from callrecords.payload import call_record_payload
from delivery.models import Kind
from delivery.outbox import Outbox
from national.contract import validate_call_record

if TYPE_CHECKING:
    from callrecords.services import AfterCommit

log = logging.getLogger(__name__)


class CallRecordFeed:
    """Queues each ended call's record for the platform, in the transaction that writes it.

    A record the platform's rules refuse is queued dead, with the problems, instead of being
    sent to be refused: an operator sees it in ``hotline outbox list --state dead``.
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> AfterCommit | None:
        """In the records' transaction (on the database's thread, see core.db.Transactions):
        returns what to do on the event loop once it has committed."""
        ended = [row for row in rows if row.get("ended_at") is not None]
        entries = []
        for row in ended:
            body = call_record_payload(row)
            problems = validate_call_record(body, idempotency_key=row["call_id"])
            if problems:
                log.error("call record %s breaks the platform's rules and is held back: %s", row["call_id"],
                          "; ".join(f"{p.field}: {p.code}" for p in problems))
            entries.append((Kind.CALL_RECORD.value, row["call_id"], body, [p.to_dict() for p in problems] or None))
        return self._outbox.wake if self._outbox.enqueue_many(conn, entries) else None
