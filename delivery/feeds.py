"""What the platform answered about tickets' cases goes back on the tickets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.problems import Problem
from delivery.models import Kind, State
from delivery.notifier import DeliveryNotifier
from delivery.outbox import Settled
from tickets.services import TicketService

log = logging.getLogger(__name__)

#: What the agent is told of a ``409`` to a case: the platform holds this ``case_id`` with
#: another body, an earlier version whose answer we lost, and it cannot amend a case. Said in
#: place of the platform's words about an Idempotency-Key, which no agent can change.
ALREADY_THERE = Problem(
    "", "already_delivered",
    "国家平台已收到此案件的先前版本，平台不能修改已收案件：请以办理进展说明变更，或另立关联工单",
    "the platform already has an earlier version of this case and cannot amend a case: "
    "report what changed as a progress step, or open a related ticket").to_dict()


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
    if result.state is State.DEAD and result.status == 409:
        return row.ticket_id, None, [dict(ALREADY_THERE)]
    if result.state is State.DEAD and result.status is not None and 400 <= result.status < 500:
        problems = result.problems or [{"field": "", "code": "refused", "message": result.error or ""}]
        return row.ticket_id, None, problems
    return None
