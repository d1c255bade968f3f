"""The tickets feature: the agents' cases (one matter each), their deadlines and audit, and
the intake API other channels send cases to."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sessionmaker
from core.plugins import Feature
from core.settings import Settings
from tickets import http
from tickets.deadlines import official_calendar
from tickets.services import OutboxWriter, TicketService


async def build(*, settings: Settings, db: AsyncEngine, outbox: OutboxWriter) -> Feature:
    tickets = TicketService(sessionmaker(db), outbox, calendar=official_calendar())

    def routes(app: web.Application) -> None:
        http.add_routes(app, tickets=tickets, intake=settings.intake)

    return Feature(api=tickets, routes=routes)
