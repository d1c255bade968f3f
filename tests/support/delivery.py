"""Tickets wired to a platform as `hotline serve` wires them: outbox, the hook that writes the
platform's answers on the tickets, and delivery workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sessionmaker
from core.settings import PlatformSettings
from delivery.feeds import TicketResults
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from tests.support.documents import ORG, SECRET
from tickets.deadlines import official_calendar
from tickets.services import TicketService


@asynccontextmanager
async def delivering_tickets(engine: AsyncEngine, platform_url: str) -> AsyncIterator[tuple[TicketService, Outbox]]:
    outbox = Outbox(engine)
    tickets = TicketService(sessionmaker(engine), outbox, calendar=official_calendar())
    outbox.hooks.append(TicketResults(tickets))
    delivery = PlatformDelivery(outbox, PlatformSettings(url=platform_url, org_code=ORG, secret=SECRET, poll_s=0.05,
                                                         backoff_base_s=0.01, backoff_cap_s=0.2))
    await delivery.start()
    try:
        yield tickets, outbox
    finally:
        await delivery.stop()
