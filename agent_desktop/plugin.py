"""The agent desktop and the wallboard: agents answer, transfer and fill in tickets in the
browser; supervisors watch the queues live and listen in; the agents' phones are followed.

Needs the queues and the accounts; without them (``[queues] enabled = false`` or no HTTP) the
feature is off. The queue engine must announce agent events (``queues.services.AnnouncingEngine``),
or the desktops and wallboards only change when they are reloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.plugin import Accounts
from agent_desktop.directory import AccountsDirectory
from agent_desktop.http import add_routes
from agent_desktop.monitor import MonitorService
from agent_desktop.notifier import DesktopNotifier
from agent_desktop.phones import PhoneService
from agent_desktop.services import DesktopService
from agent_desktop.stasis import DesktopStasis
from agent_desktop.wallboard import WallboardService
from ari.dispatcher import Dispatcher
from ari.rest import AriRest
from callrecords.plugin import CallRecords
from calls.store import CallStateStore
from core.db import sessionmaker
from core.jurisdictions import JurisdictionTree
from core.plugins import Feature
from core.settings import Settings
from ivr.plugin import Ivr
from queues.services import QueueService
from tickets.deadlines import official_calendar
from tickets.services import TicketService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Desktop:
    desktop: DesktopService
    wallboard: WallboardService
    monitor: MonitorService
    notifier: DesktopNotifier
    phones: PhoneService

    def add_routes(self, app: web.Application) -> None:
        add_routes(app, desktop=self.desktop, wallboard=self.wallboard, monitor=self.monitor,
                   notifier=self.notifier, tree=self.desktop.tree)

    async def start(self) -> None:
        self.notifier.start()

    async def resync(self) -> None:
        """After every (re)connect of the ARI events: the agents' phones (never raises)."""
        try:
            await self.phones.resync()
        except Exception:
            log.exception("phones: resync failed")


async def build(*, settings: Settings, ari: AriRest, redis: Redis, db: AsyncEngine, dispatcher: Dispatcher,
                tree: JurisdictionTree, ivr: Ivr, callrecords: CallRecords, tickets: TicketService,
                queues: QueueService | None = None, accounts: Accounts | None = None) -> Feature | None:
    if queues is None or accounts is None:
        return None
    s = settings
    store = CallStateStore(redis, s.redis.prefix)
    phones = PhoneService(ari=ari, engine=queues.engine, redis=redis, prefix=s.redis.prefix,
                          app_name=s.ari.app, settings=s.desktop, events_channel=f"{s.redis.prefix}:events:agents")
    desktop = DesktopService(
        engine=queues.engine, queues=queues, store=store, records=callrecords.repository, tickets=tickets,
        tree=tree, ari=ari, dispatcher=dispatcher, app_name=s.ari.app, redis=redis,
        prefix=s.redis.prefix, settings=s.desktop, call_language=s.ivr.language, phones=phones,
    )
    wallboard = WallboardService(
        redis=redis, queue_prefix=queues.engine.prefix, engine=queues.engine, tree=tree,
        directory=AccountsDirectory(accounts.service), sessions=sessionmaker(db), calendar=official_calendar(),
        warning_days=s.desktop.deadline_warning_days,
    )
    monitor = MonitorService(ari=ari, engine=queues.engine, store=store, redis=redis,
                             prefix=s.redis.prefix, app_name=s.ari.app, ring_timeout_s=s.queues.ring_timeout_s)
    notifier = DesktopNotifier(redis, s.redis.prefix, desktop=desktop, wallboard=wallboard, tickets=tickets,
                               on_agent_event=phones)
    desk = Desktop(desktop, wallboard, monitor, notifier, phones)
    accounts.on_logout.append(desktop.on_logout)
    stasis = DesktopStasis(ivr.service, monitor, phones)
    return Feature(api=desk, subscriptions=stasis.subscriptions(), routes=desk.add_routes, start=desk.start,
                   resync=desk.resync, stop=[("closing the desktops' events", notifier.stop)])
