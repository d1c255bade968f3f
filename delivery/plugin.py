"""Delivery to the national 12315 platform: the outbox's workers, and what the platform
answered written back on the tickets (and told to the desktops)."""

from __future__ import annotations

from redis.asyncio import Redis

from core.plugins import Feature, Step
from core.settings import Settings
from delivery.feeds import TicketResults
from delivery.gate import RedisGate
from delivery.notifier import DeliveryNotifier
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from tickets.services import TicketService


async def build(*, settings: Settings, outbox: Outbox, redis: Redis, tickets: TicketService) -> Feature:
    outbox.hooks.append(TicketResults(tickets, DeliveryNotifier(redis, settings.redis.prefix)))
    if not settings.platform.enabled:
        return Feature(api=None)
    # One gate for every process that delivers for us: a Retry-After or a halt holds for all.
    delivery = PlatformDelivery(outbox, settings.platform,
                                gate=RedisGate(redis, settings.redis.prefix, settings.platform))
    stop: list[tuple[str, Step]] = [("stopping delivery to the platform", delivery.stop)]
    return Feature(api=delivery, start=delivery.start, stop=stop)
