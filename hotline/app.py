"""Composition root: builds every component from the settings, by constructor injection.

``hotline serve`` runs exactly this against a real Asterisk; the demo and the tests run
it against the stand-in. Nothing here holds module-level state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.passwords import Passwords
from accounts.services import AccountService
from accounts.sessions import SessionStore
from accounts.web import install as install_accounts
from agent_desktop import wiring
from ari.dispatcher import Dispatcher, Timers, make_sink_table
from ari.events import EventStream
from ari.rest import AriRest
from callrecords.cdr_import import CdrImporter, agents_from_accounts
from callrecords.services import CallRecordRepository, CallRecordWriter
from core.db import make_engine, sessionmaker
from core.jurisdictions import JurisdictionTree
from core.migrate import create_schema
from core.settings import RedisSettings, Settings
from core.tasks import cancel_and_wait, until_signalled
from core.web import new_web_app
from delivery.feeds import CallRecordFeed, TicketResults
from delivery.notifier import DeliveryNotifier
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from ivr.liveness import Liveness
from ivr.media_checks import MediaChecks
from ivr.prompts.catalogue import PromptCatalogue, asterisk_language
from ivr.services import CallServices, HoldRouter, IvrService, Router
from ivr.stasis import IvrStasis
from ivr.store import CallStateStore
from queues.resolve import JurisdictionResolver
from queues.services import AgentEvents, AnnouncingEngine, QueueService
from queues.stasis import QueueStasis
from recordings import http as recordings_http
from recordings import wiring as recordings_wiring
from recordings.index import RecordingIndex
from tickets import http as tickets_http
from tickets.deadlines import official_calendar
from tickets.services import TicketService

if TYPE_CHECKING:
    from ivr.speech.engine import SpeechEngine

log = logging.getLogger(__name__)

#: The longest one step of shutting down may take.
STOP_STEP_TIMEOUT_S = 15.0


def connect_redis(settings: RedisSettings) -> Redis:
    """A client whose commands wait for a free connection instead of failing: a burst of
    calls must queue for Redis, never be dropped with "Too many connections"."""
    pool = BlockingConnectionPool.from_url(
        settings.url, max_connections=settings.max_connections, timeout=settings.pool_timeout_s,
        # After redis-server restarts, every pooled connection is dead; without a retry each
        # one fails one command (a caller's offer, a state save) before it reconnects.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


async def load_speech(settings: Settings) -> SpeechEngine | None:
    """The speech engine for the IVR's locale, or None (DTMF only) with the reason logged.

    A missing model must not keep callers from being served: the menus still take keys.
    """
    if not settings.speech.enabled:
        return None
    try:
        from ivr.speech.engine import SpeechEngine
        from ivr.speech.locale import load_speech_pack
        from ivr.speech.models import ModelNotInstalled, find_model
    except ImportError as exc:
        log.error("speech menus off, DTMF only: %s (install the 'speech' extra)", exc)
        return None
    try:
        pack = load_speech_pack(settings.ivr.language)
        model_dir = find_model(pack.model, settings.speech.models_dir)
    except (ModelNotInstalled, ValueError) as exc:
        log.error("speech menus off, DTMF only: %s", exc)
        return None
    engine = await SpeechEngine.load(
        model_dir, pack, max_streams=settings.speech.max_streams, threads=settings.speech.threads
    )
    log.info("speech menus on: %s, model %s, %d recognizer(s)", pack.locale, model_dir.name, engine.capacity)
    return engine


class Application:
    def __init__(
        self, settings: Settings, *, router: Router | None = None, speech: SpeechEngine | None = None,
        passwords: Passwords | None = None,
    ) -> None:
        self.settings = settings
        self._router = router
        #: Password hashing; tests give a cheaper one (argon2 at full cost is slow on purpose).
        self._passwords = passwords
        #: A speech engine given from outside (tests share one loaded model) is not ours to close.
        self._given_speech = speech
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        s = self.settings
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), raise_for_status=False
        )
        self.ari = AriRest(
            self.http, s.ari.url, s.ari.username, s.ari.password.get_secret_value(),
            timeout_s=s.ari.request_timeout_s,
        )
        self.redis = connect_redis(s.redis)
        await self.redis.ping()
        self.engine = make_engine(s.database.url)
        await create_schema(self.engine)
        # Ended calls are queued for the national platform in the transaction that saves them.
        self.outbox = Outbox(self.engine)
        self.records = CallRecordWriter(self.engine, after_write=CallRecordFeed(self.outbox))
        self.records.start()
        # Calls Asterisk served without us (its fallback while we were down, numbers that are
        # not ours) have only a CDR: imported from the file cdr_custom.conf writes, once each.
        self.cdr_import: CdrImporter | None = None
        if s.callrecords.cdr_file is not None:
            self.cdr_import = CdrImporter(self.engine, after_write=CallRecordFeed(self.outbox),
                                          agents=agents_from_accounts, settle_s=s.callrecords.cdr_settle_s)
            self.cdr_import.start(s.callrecords.cdr_file, s.callrecords.cdr_poll_s)
        # A ticket of a call already recorded carries the recording (hash, duration) to the platform.
        self.recording_index = RecordingIndex(sessionmaker(self.engine))
        self.tickets = TicketService(sessionmaker(self.engine), self.outbox, calendar=official_calendar(),
                                     recordings_of=self.recording_index.refs_for_call,
                                     recording_pending=self.recording_index.recording_in_progress
                                     if s.recordings.enabled else None)
        self.recordings = recordings_wiring.build(s, ari=self.ari, redis=self.redis, index=self.recording_index,
                                                  tickets=self.tickets)
        self.outbox.hooks.append(TicketResults(self.tickets, DeliveryNotifier(self.redis, s.redis.prefix)))
        self.web_url: str | None = None
        self._web: web.AppRunner | None = None
        self.desk: wiring.Desktop | None = None
        self.delivery: PlatformDelivery | None = None
        if s.platform.enabled:
            self.delivery = PlatformDelivery(self.outbox, s.platform)
            await self.delivery.start()
        self.call_records = CallRecordRepository(sessionmaker(self.engine))

        prompts = PromptCatalogue.load(s.ivr.language)
        self.dispatcher = Dispatcher(self._sink)
        #: When our calls were last known alive, for calls found gone at a resync.
        self.liveness = Liveness(self.redis, s.redis.prefix)
        self.timers = Timers(self.dispatcher, s.ari.app)
        self.speech = self._given_speech or await load_speech(s)
        self.listeners = None
        if self.speech is not None:
            from ivr.speech.listener import Listeners

            self.listeners = Listeners(
                self.ari, self.dispatcher, self.speech, s.ari.app, fmt=s.speech.format,
                bind_host=s.speech.rtp_bind_host, advertise_host=s.speech.rtp_advertise_host,
            )
        self.queues = self._router or await self._build_queues()
        self.ivr = IvrService(
            CallServices(
                ari=self.ari,
                prompts=prompts,
                timers=self.timers,
                router=self.queues or HoldRouter(),
                store=CallStateStore(self.redis, s.redis.prefix),
                records=self.records,
                language=asterisk_language(s.ivr.language),
                no_input_timeout_s=s.ivr.no_input_timeout_s,
                max_attempts=s.ivr.max_attempts,
                listeners=self.listeners,
                moh_class=s.ivr.moh_class,
            ),
            self.dispatcher,
            s.ari.app,
        )
        self._table = IvrStasis(self.ivr).table()
        if self.recordings.recorder is not None:
            self._table.update(self.recordings.recorder.table())
        if isinstance(self.queues, QueueService):
            self._table.update(QueueStasis(self.queues, self.ivr).table())
            self.queues.start()
        if s.http.enabled:
            await self._serve_http()  # adds the desktop's handlers to the table: before it is frozen
        self._handle = make_sink_table(self._table)
        # Can callers hear what the IVR plays? Checked after every connect, in the background.
        self.media_checks = MediaChecks.for_app(self.ari, s, prompts) if s.ivr.check_media else None
        if self.media_checks is not None:
            self._tasks.append(asyncio.create_task(self.media_checks.run(), name="media-checks"))
        self.events = EventStream(
            s.ari.url,
            s.ari.app,
            s.ari.username,
            s.ari.password.get_secret_value(),
            self.dispatcher,
            on_connect=self._resync,
            initial_backoff_s=s.ari.reconnect_initial_s,
            max_backoff_s=s.ari.reconnect_max_s,
        )
        self._tasks.append(asyncio.create_task(self.events.run(), name="ari-events"))
        self._tasks.append(asyncio.create_task(self.liveness.run(self.events.connected), name="ari-liveness"))

    async def _build_queues(self) -> QueueService | None:
        """The queue engine and its call logic, when queues are on (the default)."""
        s = self.settings
        if not s.queues.enabled:
            return None
        tree = JurisdictionTree.load(s.queues.stations_file)
        # The engine announces agents' states and calls (for desktops and wallboards, in any process).
        self.agent_events = AgentEvents(self.redis, s.redis.prefix)
        self.queue_engine = AnnouncingEngine(self.redis, f"{s.redis.prefix}:queues", wrap_up_s=s.queues.wrap_up_s,
                                             events=self.agent_events)
        return QueueService(
            self.queue_engine, tree, JurisdictionResolver(tree, default_code=s.queues.default_jurisdiction),
            self.ari, self.dispatcher, s.ari.app, s.queues, recorder=self.recordings.recorder,
        )

    async def _resync(self) -> None:
        """After every (re)connect: calls first, then the queues they may have left."""
        live = await self.ivr.resync(await self.liveness.gone_since(self.events.lost_at))
        if isinstance(self.queues, QueueService):
            await self.queues.resync(live)
        if self.desk is not None:
            await self.desk.resync()  # the agents' phones: endpoint events, and their states now
        if self.recordings.recorder is not None:
            # Recordings that finished while we were not listening (events are not replayed).
            self.recordings.recorder.start_recovery()
        if self.media_checks is not None:
            self.media_checks.connected()  # prompts, numbers and music: checked in the background

    async def _sink(self, key: str, event) -> None:  # type: ignore[no-untyped-def]
        await self._handle(key, event)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.events.connected.wait(), timeout)

    async def _serve_http(self) -> None:
        """The intake API, and with the queues on, accounts, the agent desktop and the wallboard."""
        s = self.settings
        web_app = new_web_app()
        tickets_http.add_routes(web_app, tickets=self.tickets, intake=s.intake)
        if isinstance(self.queues, QueueService):
            sessions = SessionStore(self.redis, s.redis.prefix, s.http.session_idle_s)
            self.accounts = AccountService(sessionmaker(self.engine), self.queues.tree, passwords=self._passwords,
                                           session_store=sessions)
            self.desk = wiring.build(self, directory=wiring.AccountsDirectory(self.accounts))
            self._table.update(wiring.event_handlers(self.desk, self._table))
            install_accounts(web_app, accounts=self.accounts, sessions=sessions, settings=s,
                             on_logout=self.desk.desktop.on_logout)
            self.desk.add_routes(web_app)
            recordings_http.add_routes(web_app, index=self.recordings.index, store=self.recordings.store,
                                       tree=self.queues.tree)
            self.desk.start()
        self._web = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
        await self._web.setup()
        site = web.TCPSite(self._web, s.http.host, s.http.port)
        await site.start()
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        self.web_url = f"http://{host}:{port}"
        log.info("HTTP API at %s", self.web_url)

    async def _stop_http(self) -> None:
        if self._web is not None:
            await self._web.cleanup()
        if self.desk is not None:
            await self.desk.stop()

    async def _stop_delivery(self) -> None:
        if self.delivery is not None:
            await self.delivery.stop()

    async def stop(self) -> None:
        """Stop taking events, finish what is queued, release everything. Each step runs even
        if one before it failed, so that a stuck database never leaves sockets and tasks behind.
        Calls in progress stay in Asterisk (and in Redis): a restarted process resumes them."""
        await cancel_and_wait(self._tasks, what="the application")
        self._tasks.clear()
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("closing the HTTP API", self._stop_http),
            ("draining events", lambda: self.dispatcher.drain(timeout=2.0)),
            ("closing the dispatcher", self.dispatcher.close),
        ]
        if isinstance(self.queues, QueueService):
            steps.append(("stopping the queues", self.queues.close))
        if self.listeners is not None:
            steps.append(("closing listeners", self.listeners.close))
        if self.speech is not None and self.speech is not self._given_speech:
            steps.append(("closing the speech engine", self.speech.close))
        if self.recordings.recorder is not None:
            steps.append(("finishing recordings", self.recordings.recorder.close))
        if self.cdr_import is not None:
            steps.append(("stopping the CDR import", self.cdr_import.close))
        steps += [
            ("writing call records", self.records.close),
            ("stopping delivery to the platform", self._stop_delivery),
            ("closing the database", self.engine.dispose),
            ("closing Redis", self.redis.aclose),
            ("closing the ARI client", self.http.close),
        ]
        for what, step in steps:
            try:
                # Bounded: a shutdown that hangs on one step would keep SIGTERM waiting for ever.
                async with asyncio.timeout(STOP_STEP_TIMEOUT_S):
                    await step()
            except Exception as exc:  # noqa: BLE001 - the next steps must still run
                log.warning("stopping: %s failed: %s", what, exc or type(exc).__name__)


async def run_serve(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM; calls in progress stay in Asterisk and are resumed on restart."""
    app = Application(settings)
    await app.start()
    log.info("hotline serving ARI app %r at %s", settings.ari.app, settings.ari.url)
    await until_signalled()
    await app.stop()
    return 0
