"""The IVR: every inbound call is answered, welcomed and asked what it is about, by speech
(Vosk over externalMedia, with barge-in) or keys, and handed to whoever routes it (the queues)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from ari.dispatcher import Dispatcher, Timers
from ari.events import EventStream
from ari.rest import AriRest
from callrecords.plugin import CallRecords
from calls.call import CallServices
from calls.liveness import Liveness
from calls.overload import OverloadGuard
from calls.registry import StateRegistry
from calls.services import CallService
from calls.store import CallStateStore
from core.metrics import Metrics
from core.plugins import Feature, Step, Subscription
from core.settings import Settings
from core.tasks import cancel_and_wait
from ivr.flow import HoldRouter, Menus, register_states
from ivr.media_checks import MediaChecks
from ivr.prompts.catalogue import PromptCatalogue, asterisk_language
from ivr.stasis import IvrStasis

if TYPE_CHECKING:
    from ivr.speech.engine import SpeechEngine
    from ivr.speech.listener import Listeners

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ivr:
    service: CallService
    #: The queues set ``menus.router`` when they are on (before the first call).
    menus: Menus
    #: None when the menus take keys only (speech off, or its model missing).
    speech: SpeechEngine | None
    listeners: Listeners | None
    media_checks: MediaChecks | None
    #: Whether a new call is taken or turned away (load shedding).
    overload: OverloadGuard


async def load_speech(settings: Settings) -> SpeechEngine | None:
    """The speech engine for the IVR's locale, or None (DTMF only) with the reason logged.

    A missing model must not keep callers from being served: the menus still take keys.
    """
    if not settings.speech.enabled:
        return None
    try:
        from ivr.speech.engine import SpeechEngine
        from ivr.speech.grammar import Margins
        from ivr.speech.locale import load_speech_pack
        from ivr.speech.models import ModelNotInstalled, find_model
    except ImportError as exc:
        log.warning("speech menus off, DTMF only: %s (install the 'speech' extra)", exc)
        return None
    try:
        pack = load_speech_pack(settings.ivr.language)
        model_dir = find_model(pack.model, settings.speech.models_dir)
    except (ModelNotInstalled, ValueError) as exc:
        log.warning("speech menus off, DTMF only: %s", exc)
        return None
    engine = await SpeechEngine.load(
        model_dir, pack, max_streams=settings.speech.max_streams, threads=settings.speech.threads,
        no_word_timeout_s=settings.speech.no_word_timeout_s, max_utterance_s=settings.speech.max_utterance_s,
        margins=Margins(accept=settings.speech.accept_margin, confirm=settings.speech.confirm_margin),
        confirm_below_db=settings.speech.confirm_below_db, noise_reduction=settings.speech.noise_reduction,
    )
    log.info("speech menus on: %s, model %s, %d recognizer(s)", pack.locale, model_dir.name, engine.capacity)
    return engine


async def build(*, settings: Settings, ari: AriRest, redis: Redis, dispatcher: Dispatcher, timers: Timers,
                events: EventStream, callrecords: CallRecords, states: StateRegistry, metrics: Metrics,
                given_speech: SpeechEngine | None = None) -> Feature:
    s = settings
    prompts = PromptCatalogue.load(s.ivr.language)
    # A speech engine given from outside (tests share one loaded model) is not ours to close.
    speech = given_speech or await load_speech(s)
    listeners = None
    if speech is not None:
        from ivr.speech.listener import Listeners

        listeners = Listeners(ari, dispatcher, speech, s.ari.app, fmt=s.speech.format,
                              bind_host=s.speech.rtp_bind_host, advertise_host=s.speech.rtp_advertise_host,
                              telephone_band=s.speech.telephone_band)
    # The queues feature routes the calls when it is on (it sets menus.router).
    menus = Menus(router=HoldRouter(), max_attempts=s.ivr.max_attempts)
    register_states(states, menus)
    ivr = CallService(
        CallServices(
            ari=ari, prompts=prompts, timers=timers,
            store=CallStateStore(redis, s.redis.prefix), records=callrecords.writer,
            language=asterisk_language(s.ivr.language), no_input_timeout_s=s.ivr.no_input_timeout_s,
            listeners=listeners, moh_class=s.ivr.moh_class,
        ),
        states, dispatcher, s.ari.app,
    )
    # New calls beyond what this process can hold are turned away on purpose (calls/overload.py).
    guard = OverloadGuard(s.overload, metrics, lambda: len(ivr.flows))
    metrics.read("hotline_calls_started_total", "counter", "Calls whose flow the application started.",
                 lambda: ivr.calls_started)
    #: When our calls were last known alive, for calls found gone at a resync.
    liveness = Liveness(redis, s.redis.prefix)
    # Can callers hear what the IVR plays? Checked after every connect, in the background.
    media_checks = MediaChecks.for_app(ari, s, prompts) if s.ivr.check_media else None
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.append(asyncio.create_task(liveness.run(events.connected), name="ari-liveness"))
        tasks.append(asyncio.create_task(guard.run(), name="overload-guard"))
        if media_checks is not None:
            tasks.append(asyncio.create_task(media_checks.run(), name="media-checks"))

    async def resync() -> None:
        await ivr.resync(await liveness.gone_since(events.lost_at))
        if media_checks is not None:
            media_checks.connected()  # prompts, numbers and music: checked in the background

    async def stop_tasks() -> None:
        await cancel_and_wait(tasks, what="the IVR's background tasks")

    stop: list[tuple[str, Step]] = [("stopping the IVR's background tasks", stop_tasks)]
    if listeners is not None:
        stop.append(("closing listeners", listeners.close))
    if speech is not None and speech is not given_speech:
        stop.append(("closing the speech engine", speech.close))
    return Feature(api=Ivr(ivr, menus, speech, listeners, media_checks, guard),
                   subscriptions=[Subscription(name, h) for name, h in IvrStasis(ivr, guard).table().items()],
                   start=start, resync=resync, stop=stop)
