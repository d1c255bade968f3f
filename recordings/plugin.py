"""The recordings feature: each conversation recorded over ARI, stored verified by SHA-256,
indexed, linked to the call's tickets, and played back to those allowed to hear it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.plugin import Accounts
from ari.rest import AriRest
from callrecords.plugin import CallRecords
from core.db import sessionmaker
from core.jurisdictions import JurisdictionTree
from core.plugins import Feature
from core.settings import Settings
from recordings import http
from recordings.capture import CallRecorder
from recordings.index import RecordingIndex
from recordings.refusals import AnonymousRefusals
from recordings.stasis import RecordingStasis
from recordings.storage import AriSource, RecordingSource, RecordingStore, SpoolSource
from tickets.services import TicketService


@dataclass(frozen=True)
class Recordings:
    index: RecordingIndex
    store: RecordingStore
    #: None when recording is off (``[recordings] enabled = false``): what was stored stays reachable.
    recorder: CallRecorder | None


async def build(*, settings: Settings, ari: AriRest, redis: Redis, db: AsyncEngine, tree: JurisdictionTree,
                tickets: TicketService, callrecords: CallRecords, accounts: Accounts | None = None) -> Feature:
    s = settings.recordings
    index = RecordingIndex(sessionmaker(db))
    # A ticket of a call already recorded carries the recording (hash, duration) to the platform;
    # while a call is being recorded, its completed cases wait for the recording.
    tickets.follow_recordings(index.refs_for_call, index.recording_in_progress if s.enabled else None)
    source: RecordingSource = (AriSource(ari) if s.fetch_from_ari or s.spool_dir is None
                               else SpoolSource(s.spool_dir, ari))

    async def show_call_state(call_id: str) -> None:
        # Through the writer of the call records: it writes this after the call's record,
        # which is written behind the call and may not exist yet.
        callrecords.writer.amend(call_id, recording_state=await index.call_state(call_id))

    store = RecordingStore(s, index, source, link_tickets=tickets.link_recordings, show_call_state=show_call_state)
    recorder = CallRecorder(ari, index, store, redis, settings.redis.prefix, s) if s.enabled else None

    def routes(app: web.Application) -> None:
        http.add_routes(app, index=index, store=store, tree=tree,
                        anonymous=AnonymousRefusals(redis, settings.redis.prefix))

    api = Recordings(index, store, recorder)
    # The playback routes need the accounts' sessions (who may hear what).
    shown = routes if accounts is not None else None
    if recorder is None:
        return Feature(api=api, routes=shown)

    async def recover() -> None:
        # Recordings that finished while we were not listening (events are not replayed).
        recorder.start_recovery()

    return Feature(api=api, routes=shown, resync=recover,
                   subscriptions=RecordingStasis(recorder).subscriptions(),
                   stop=[("finishing recordings", recorder.close)])
