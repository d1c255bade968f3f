"""How the desktop and the wallboard plug into the application (``hotline.app.Application``).

The composition root calls, once the queues are built and before the HTTP server starts::

    desk = wiring.build(app, directory=AccountsDirectory(accounts))
    app_table.update(wiring.event_handlers(desk, app_table))   # the ARI event table
    desk.add_routes(web_app)                                   # with accounts.web.install(...)
    desk.start()                 # the notifier's subscription
    ...
    await desk.resync()          # after every (re)connect of the ARI events (the phones' states)
    ...
    await desk.stop()            # at shutdown, before Redis closes

The queue engine must announce agent events (``queues.services.AnnouncingEngine``), or the
desktops and wallboards only change when they are reloaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent_desktop.http import add_routes
from agent_desktop.monitor import MonitorService, MonitorStasis
from agent_desktop.notifier import DesktopNotifier
from agent_desktop.phones import PhoneService
from agent_desktop.services import DesktopActions, DesktopService
from agent_desktop.wallboard import AgentDirectory, WallboardService
from core.db import sessionmaker
from ivr.store import CallStateStore
from queues.services import QueueService
from tickets.deadlines import official_calendar

if TYPE_CHECKING:
    from accounts.services import AccountService
    from hotline.app import Application

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], Awaitable[None]]


@dataclass
class Desktop:
    desktop: DesktopService
    wallboard: WallboardService
    monitor: MonitorService
    notifier: DesktopNotifier
    actions: DesktopActions
    phones: PhoneService

    def add_routes(self, web_app: web.Application) -> None:
        add_routes(web_app, desktop=self.desktop, wallboard=self.wallboard, monitor=self.monitor,
                   notifier=self.notifier, tree=self.desktop.tree)

    def start(self) -> None:
        self.notifier.start()

    async def resync(self) -> None:
        """After every (re)connect of the ARI events: the agents' phones (never raises)."""
        try:
            await self.phones.resync()
        except Exception:
            log.exception("phones: resync failed")

    async def stop(self) -> None:
        await self.notifier.stop()


def build(app: Application, *, directory: AgentDirectory) -> Desktop:
    """The desktop's services on the application's clients (after ``app.start()`` built them)."""
    queues = app.queues
    if not isinstance(queues, QueueService):
        raise RuntimeError("the agent desktop needs the queues ([queues] enabled = true)")
    s = app.settings
    store = CallStateStore(app.redis, s.redis.prefix)
    phones = PhoneService(ari=app.ari, engine=queues.engine, redis=app.redis, prefix=s.redis.prefix,
                          app_name=s.ari.app, settings=s.desktop, events_channel=f"{s.redis.prefix}:events:agents")
    desktop = DesktopService(
        engine=queues.engine, queues=queues, store=store, records=app.call_records, tickets=app.tickets,
        tree=queues.tree, ari=app.ari, dispatcher=app.dispatcher, app_name=s.ari.app, redis=app.redis,
        prefix=s.redis.prefix, settings=s.desktop, call_language=s.ivr.language, phones=phones,
    )
    wallboard = WallboardService(
        redis=app.redis, queue_prefix=queues.engine.prefix, engine=queues.engine, tree=queues.tree,
        directory=directory, sessions=sessionmaker(app.engine), calendar=official_calendar(),
        warning_days=s.desktop.deadline_warning_days,
    )
    monitor = MonitorService(ari=app.ari, engine=queues.engine, store=store, redis=app.redis,
                             prefix=s.redis.prefix, app_name=s.ari.app, ring_timeout_s=s.queues.ring_timeout_s)
    notifier = DesktopNotifier(app.redis, s.redis.prefix, desktop=desktop, wallboard=wallboard, tickets=app.tickets,
                               on_agent_event=phones.agent_changed)
    return Desktop(desktop, wallboard, monitor, notifier, DesktopActions(app.ivr), phones)


def event_handlers(desk: Desktop, table: dict[str, Handler]) -> dict[str, Handler]:
    """Handlers to add to (or replace in) the application's ARI event table: the monitors'
    channel events before the IVR's, the desktop's actions on live calls, and the agents'
    phones coming and going."""
    return {**MonitorStasis(desk.monitor).wrap(table), **desk.actions.table(),
            "EndpointStateChange": desk.phones.on_endpoint_state_change}


class AccountsDirectory:
    """Agents' display names from the accounts, re-read at most every ``ttl_s`` seconds (names
    change rarely; the wallboard asks twice a second)."""

    #: An agent id not among the names is looked for again after this long at the soonest.
    UNKNOWN_RETRY_S = 2.0

    def __init__(self, accounts: AccountService, *, ttl_s: float = 30.0) -> None:
        self._accounts, self._ttl_s = accounts, ttl_s
        self._names: dict[str, str] = {}
        self._read_at = float("-inf")

    async def display_names(self, agent_ids: Collection[str]) -> dict[str, str]:
        age = time.monotonic() - self._read_at
        unknown = any(a not in self._names for a in agent_ids)
        if age > self._ttl_s or (unknown and age > self.UNKNOWN_RETRY_S):
            users = await self._accounts.list(role="agent")
            self._names = {u.agent_id: u.display_name for u in users if u.agent_id}
            self._read_at = time.monotonic()
        return {a: self._names[a] for a in agent_ids if a in self._names}
