"""What the platform answered about tickets' cases goes back on the tickets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from delivery.models import Kind, State
from delivery.notifier import DeliveryNotifier
from delivery.outbox import Settled
from tickets.services import TicketService

log = logging.getLogger(__name__)


class TicketResults:
    """Settle hook: what the platform answered to a ticket's case is written on the ticket in
    the transaction that settles the outbox row, so the two never disagree after a crash.
    A refusal (4xx) carries the platform's problems to the agent's ticket, field by field."""

    def __init__(self, tickets: TicketService, notifier: DeliveryNotifier | None = None) -> None:
        self._tickets = tickets
        self._notifier = notifier

    async def __call__(self, conn: AsyncConnection, results: Sequence[Settled]) -> None:
        answers = [a for a in map(_answer, results) if a is not None]
        if not answers:
            return
        async with AsyncSession(bind=conn, expire_on_commit=False) as session:
            await self._tickets.record_deliveries(session, answers)
        if self._notifier is not None:
            self._notifier.after_commit(conn, answers)


def _answer(result: Settled) -> tuple[str, str | None, list[dict[str, Any]] | None] | None:
    row = result.row
    if row.kind is not Kind.CASE or row.ticket_id is None:
        return None
    if result.state is State.DELIVERED:
        number = (result.receipt or {}).get("platform_case_no")
        return (row.ticket_id, str(number), None) if number else None
    if result.state is State.DEAD and result.status is not None and 400 <= result.status < 500:
        problems = result.problems or [{"field": "", "code": "refused", "message": result.error or ""}]
        return row.ticket_id, None, problems
    return None
