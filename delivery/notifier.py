"""Outbound events of the delivery: what the agent desktop and the wallboard hear about the
platform's answers to tickets, on Redis pub/sub (``<prefix>:events:tickets``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from core.tasks import BackgroundTasks

log = logging.getLogger(__name__)

Answer = tuple[str, str | None, list[dict[str, Any]] | None]


class DeliveryNotifier:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self.channel = f"{prefix}:events:tickets"
        self._tasks = BackgroundTasks("ticket delivery events")

    def after_commit(self, conn: AsyncConnection, answers: list[Answer]) -> None:
        """Publish when the settling transaction commits, not before: a result rolled back
        with its transaction is never announced."""
        sync = conn.sync_connection
        if sync is None:
            return
        event.listen(sync, "commit", lambda _conn: self._publish_soon(answers), once=True)

    def _publish_soon(self, answers: list[Answer]) -> None:
        self._tasks.spawn(self.publish(answers), "ticket-delivery-events")

    async def publish(self, answers: list[Answer]) -> None:
        for ticket_id, platform_case_no, problems in answers:
            message = {"type": "ticket.delivered" if problems is None else "ticket.refused", "ticket_id": ticket_id,
                       "platform_case_no": platform_case_no, "problems": problems}
            try:
                await self._redis.publish(self.channel, json.dumps(message, ensure_ascii=False))
            except Exception as exc:  # noqa: BLE001 - the ticket holds the result; the push is a courtesy
                log.warning("could not tell the desktop about ticket %s: %s", ticket_id, exc)
