"""Composition root: the shared clients, then every enabled feature's plugin, in order.

``hotline serve`` runs exactly this against a real Asterisk; the demo and the tests run it
against the stand-in. The features are listed in :mod:`hotline.plugins`; how one plugs in is
in :mod:`core.plugins`. Nothing here holds module-level state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.passwords import Passwords
from accounts.plugin import Accounts
from accounts.services import AccountService
from agent_desktop.plugin import Desktop
from ari.dispatcher import Dispatcher, Timers
from ari.errors import AriError
from ari.events import EventStream
from ari.rest import AriRest
from callrecords.cdr_import import CdrImporter
from callrecords.plugin import CallRecords
from callrecords.services import CallRecordRepository, CallRecordWriter
from calls.registry import StateRegistry
from calls.services import CallService
from core.db import make_engine
from core.jurisdictions import JurisdictionTree
from core.lean_redis import lean_from_pool
from core.metrics import Metrics, metrics_routes
from core.migrate import create_schema
from core.plugins import Assembly, EventTable, assemble
from core.privacy import mask_url
from core.settings import RedisSettings, Settings
from core.tasks import cancel_and_wait, until_signalled
from core.web import new_web_app
from core.web_security import secure
from delivery.outbox import Outbox
from hotline.plugins import load_plugins
from hotline.reach import (
    database_unreachable,
    is_database_unreachable,
    is_redis_unreachable,
    probe_database,
    redis_unreachable,
    retrying,
)
from ivr.media_checks import MediaChecks
from ivr.plugin import Ivr
from queues.services import AnnouncingEngine, QueueService
from recordings.index import RecordingIndex
from recordings.plugin import Recordings
from tickets.services import TicketService

if TYPE_CHECKING:
    from ivr.speech.engine import SpeechEngine
    from ivr.speech.listener import Listeners

log = logging.getLogger(__name__)

#: The longest one step of shutting down may take.
STOP_STEP_TIMEOUT_S = 15.0
#: The longest one try to reach Redis at start may take.
REDIS_ATTEMPT_TIMEOUT_S = 5.0


def connect_redis(settings: RedisSettings) -> Redis:
    """A client whose pool's commands wait for a free connection instead of failing: a burst of
    calls must queue for Redis, never be dropped with "Too many connections"."""
    pool = BlockingConnectionPool.from_url(
        settings.url, max_connections=settings.max_connections, timeout=settings.pool_timeout_s,
        # After redis-server restarts, every pooled connection is dead; without a retry each
        # one fails one command (a caller's offer, a state save) before it reconnects.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        retry_on_error=[RedisConnectionError],
    )
    # Commands and pipelines on one shared connection, the rest through the pool (core/lean_redis.py).
    return lean_from_pool(pool)  # owns the pool: aclose() closes its connections


class Clients:
    """What every feature may be given by name: the settings and the shared connections."""

    def __init__(self, settings: Settings, resync: Callable[[], Awaitable[None]], table: EventTable) -> None:
        s = settings
        self.settings = settings
        #: Counters and gauges of every feature, served at GET /metrics.
        self.metrics = Metrics()
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200), raise_for_status=False)
        self.ari = AriRest(self.http, s.ari.url, s.ari.username, s.ari.password.get_secret_value(),
                           timeout_s=s.ari.request_timeout_s)
        self.redis = connect_redis(s.redis)
        self.db = make_engine(s.database.url)
        # Cases, progress and call records are written in the transaction of the change that
        # makes them: every feature that feeds the national platform writes to this one outbox.
        self.outbox = Outbox(self.db)
        self.tree = JurisdictionTree.load(s.queues.stations_file)
        self.dispatcher = Dispatcher(table)
        self.timers = Timers(self.dispatcher, s.ari.app)
        # The call states of every feature by name (the IVR's and the queues' register theirs),
        # so that a restarted process resumes each stored call in its own.
        self.states = StateRegistry()
        self.events = EventStream(
            s.ari.url, s.ari.app, s.ari.username, s.ari.password.get_secret_value(), self.dispatcher,
            on_connect=resync, initial_backoff_s=s.ari.reconnect_initial_s, max_backoff_s=s.ari.reconnect_max_s,
        )

    def by_name(self) -> dict[str, object]:
        return {"settings": self.settings, "http": self.http, "ari": self.ari, "redis": self.redis, "db": self.db,
                "outbox": self.outbox, "tree": self.tree, "dispatcher": self.dispatcher, "timers": self.timers,
                "states": self.states, "events": self.events, "metrics": self.metrics}


class Application:
    def __init__(self, settings: Settings, *, speech: SpeechEngine | None = None,
                 passwords: Passwords | None = None) -> None:
        self.settings = settings
        #: Given from outside (tests share one loaded speech model, and hash passwords cheaply).
        self._given = {name: part for name, part in (("given_speech", speech), ("passwords", passwords))
                       if part is not None}
        self._table = EventTable()
        self._clients: Clients | None = None
        self.parts = Assembly()
        self._tasks: list[asyncio.Task[None]] = []
        self._web: web.AppRunner | None = None
        self.web_url: str | None = None

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            raise RuntimeError("the application is not started")
        return self._clients

    async def start(self, *, wait_s: float = 0.0) -> None:
        """Connect and build every feature. Redis and the database are waited for up to
        ``wait_s`` seconds, then :class:`Unreachable` says which; Asterisk is not waited for
        here: the events WebSocket keeps trying it in the background (``ari.events``)."""
        # Made here, not in __init__: the clients belong to the running event loop.
        self._clients = c = Clients(self.settings, self._resync, self._table)
        s = self.settings
        # redis-py waits for a connection as long as the system lets it; the database's
        # drivers have a connect timeout, and SQLite may rightly wait for another's lock.
        await retrying(f"Redis at {mask_url(s.redis.url)}", c.redis.ping, unreachable=is_redis_unreachable,
                       worded=lambda exc: redis_unreachable(s.redis.url, exc), wait_s=wait_s,
                       attempt_timeout_s=REDIS_ATTEMPT_TIMEOUT_S)
        await retrying(f"the database at {mask_url(s.database.url)}", lambda: probe_database(c.db),
                       unreachable=is_database_unreachable,
                       worded=lambda exc: database_unreachable(s.database.url, exc), wait_s=wait_s)
        await create_schema(c.db, self.settings)
        self.parts = await assemble(load_plugins(), {**c.by_name(), **self._given}, self._table)
        # The table is frozen now: Asterisk's events of other types need not be read further.
        c.events.wanted = frozenset(self._table.events())
        for start in self.parts.starts():
            await start()
        if self.settings.http.enabled:
            await self._serve_http()
        self._tasks.append(asyncio.create_task(c.events.run(), name="ari-events"))

    async def _resync(self) -> None:
        """After every (re)connect, each feature in build order; one failing does not stop the rest."""
        self.clients.ari.forget_subscriptions()
        await self._filter_events()
        for name, resync in self.parts.resyncs():
            try:
                await resync()
            except Exception:
                log.exception("resync of %s failed", name)

    async def _filter_events(self) -> None:
        """Ask Asterisk to send only the event types some feature handles: a whole call makes
        about a hundred events, three in four of no interest (ChannelVarset, ChannelDialplan,
        Dial, ...); each one not sent saves Asterisk its serialising and writing and us a
        WebSocket frame, a JSON decode and a wake-up (issue 15). Set at every connect: a
        restarted Asterisk forgets it. The events stream drops the other types all the same,
        so a switch that refuses the filter only costs more."""
        c = self.clients
        if c.events.wanted is None:
            return
        try:
            await c.ari.filter_events(self.settings.ari.app, c.events.wanted)
        except AriError as exc:
            log.warning("Asterisk did not take the application's event filter (%s): every event is sent and "
                        "those of no interest dropped here", exc)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.clients.events.connected.wait(), timeout)

    async def _serve_http(self) -> None:
        """Every feature's routes on one HTTP application (``[http]``)."""
        s = self.settings
        web_app = new_web_app()
        secure(web_app, s)
        for add_routes in self.parts.routes():
            add_routes(web_app)
        metrics_routes(self.clients.metrics)(web_app)
        self._web = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
        await self._web.setup()
        site = web.TCPSite(self._web, s.http.host, s.http.port)
        await site.start()
        host, port = self._web.addresses[0][:2]
        self.web_url = f"http://{host}:{port}"
        log.info("HTTP API at %s", self.web_url)

    async def _stop_http(self) -> None:
        if self._web is not None:
            await self._web.cleanup()

    async def stop(self) -> None:
        """Stop taking events, finish what is queued, release everything. Each step runs even
        if one before it failed, so that a stuck database never leaves sockets and tasks behind.
        Calls in progress stay in Asterisk (and in Redis): a restarted process resumes them."""
        c = self.clients
        await cancel_and_wait(self._tasks, what="the application")
        self._tasks.clear()
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("closing the HTTP API", self._stop_http),
            ("draining events", lambda: c.dispatcher.drain(timeout=2.0)),
            ("closing the dispatcher", c.dispatcher.close),
            *self.parts.stops(),
            ("closing the database", c.db.dispose),
            ("closing Redis", c.redis.aclose),
            ("closing the ARI client", c.ari.close),
            ("closing the HTTP client", c.http.close),
        ]
        for what, step in steps:
            try:
                # Bounded: a shutdown that hangs on one step would keep SIGTERM waiting for ever.
                async with asyncio.timeout(STOP_STEP_TIMEOUT_S):
                    await step()
            except Exception as exc:  # noqa: BLE001 - the next steps must still run
                log.warning("stopping: %s failed: %s", what, exc or type(exc).__name__)

    # ----------------------------------------------------------------- what tests and the demo look at

    @property
    def ari(self) -> AriRest:
        return self.clients.ari

    @property
    def redis(self) -> Redis:
        return self.clients.redis

    @property
    def engine(self) -> AsyncEngine:
        return self.clients.db

    @property
    def outbox(self) -> Outbox:
        return self.clients.outbox

    @property
    def dispatcher(self) -> Dispatcher:
        return self.clients.dispatcher

    @property
    def timers(self) -> Timers:
        return self.clients.timers

    @property
    def events(self) -> EventStream:
        return self.clients.events

    @property
    def metrics(self) -> Metrics:
        return self.clients.metrics

    @property
    def tickets(self) -> TicketService:
        return cast(TicketService, self.parts.api("tickets"))

    @property
    def records(self) -> CallRecordWriter:
        return cast(CallRecords, self.parts.api("callrecords")).writer

    @property
    def call_records(self) -> CallRecordRepository:
        return cast(CallRecords, self.parts.api("callrecords")).repository

    @property
    def cdr_import(self) -> CdrImporter | None:
        return cast(CallRecords, self.parts.api("callrecords")).cdr_import

    @property
    def recordings(self) -> Recordings:
        return cast(Recordings, self.parts.api("recordings"))

    @property
    def recording_index(self) -> RecordingIndex:
        return self.recordings.index

    @property
    def ivr(self) -> CallService:
        return cast(Ivr, self.parts.api("ivr")).service

    @property
    def speech(self) -> SpeechEngine | None:
        return cast(Ivr, self.parts.api("ivr")).speech

    @property
    def listeners(self) -> Listeners | None:
        return cast(Ivr, self.parts.api("ivr")).listeners

    @property
    def media_checks(self) -> MediaChecks | None:
        return cast(Ivr, self.parts.api("ivr")).media_checks

    @property
    def queues(self) -> QueueService | None:
        return cast("QueueService | None", self.parts.api("queues"))

    @property
    def queue_engine(self) -> AnnouncingEngine:
        queues = self.queues
        if queues is None:
            raise RuntimeError("the queues are off ([queues] enabled = false)")
        return cast(AnnouncingEngine, queues.engine)

    @property
    def accounts(self) -> AccountService | None:
        accounts = cast("Accounts | None", self.parts.api("accounts"))
        return None if accounts is None else accounts.service

    @property
    def desk(self) -> Desktop | None:
        return cast("Desktop | None", self.parts.api("agent_desktop"))


async def run_serve(settings: Settings, *, wait_s: float = 15.0) -> int:
    """Run until SIGINT/SIGTERM; calls in progress stay in Asterisk and are resumed on restart.

    Redis or the database still away after ``wait_s``: :class:`Unreachable`. Whatever stops
    the start, what was opened is closed again before the error goes up."""
    app = Application(settings)
    try:
        await app.start(wait_s=wait_s)
    except BaseException:
        if app._clients is not None:  # what was opened is closed, whatever stopped the start
            await app.stop()
        raise
    log.info("hotline serving ARI app %r at %s", settings.ari.app, settings.ari.url)
    await until_signalled()
    await app.stop()
    return 0
