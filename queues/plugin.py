"""The queues: calls wait by jurisdiction (in Redis) for centralized answering, overflow up
the five levels, hear announcements, may book a callback, and are offered to agents."""

from __future__ import annotations

from redis.asyncio import Redis

from ari.dispatcher import Dispatcher
from ari.rest import AriRest
from calls.registry import StateRegistry
from core.jurisdictions import JurisdictionTree
from core.plugins import Feature, Subscription
from core.settings import Settings
from ivr.plugin import Ivr
from queues.flow import register_states
from queues.resolve import JurisdictionResolver
from queues.services import AgentEvents, AnnouncingEngine, QueueService
from queues.stasis import QueueStasis
from recordings.plugin import Recordings


async def build(*, settings: Settings, ari: AriRest, redis: Redis, dispatcher: Dispatcher, tree: JurisdictionTree,
                states: StateRegistry, ivr: Ivr, recordings: Recordings | None = None) -> Feature | None:
    s = settings
    if not s.queues.enabled:
        return None  # the IVR's calls are held with music instead
    # The engine announces agents' states and calls (for desktops and wallboards, in any process).
    engine = AnnouncingEngine(redis, f"{s.redis.prefix}:queues", wrap_up_s=s.queues.wrap_up_s,
                              events=AgentEvents(redis, s.redis.prefix))
    queues = QueueService(engine, tree, JurisdictionResolver(tree, default_code=s.queues.default_jurisdiction),
                          ari, dispatcher, s.ari.app, s.queues,
                          recorder=recordings.recorder if recordings is not None else None)
    # Before any call arrives: the IVR hands its callers to the queues.
    register_states(states, queues)
    ivr.menus.router = queues

    async def start() -> None:
        queues.start()

    async def resync() -> None:
        # Calls the engine holds whose channel Asterisk no longer has leave the queues.
        await queues.resync({channel.id for channel in await ari.list_channels()})

    stasis = QueueStasis(queues, ivr.service)
    return Feature(api=queues, subscriptions=[Subscription(n, h) for n, h in stasis.table().items()],
                   start=start, resync=resync, stop=[("stopping the queues", queues.close)])
