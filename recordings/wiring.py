"""The recordings feature's parts, built from the settings (used by ``hotline.app`` and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from ari.rest import AriRest
from core.settings import Settings
from recordings.capture import CallRecorder
from recordings.index import RecordingIndex
from recordings.storage import AriSource, RecordingSource, RecordingStore, SpoolSource
from tickets.services import TicketService


@dataclass
class Recordings:
    index: RecordingIndex
    store: RecordingStore
    #: None when recording is off (``[recordings] enabled = false``): what was stored stays reachable.
    recorder: CallRecorder | None


def build(settings: Settings, *, ari: AriRest, redis: Redis, index: RecordingIndex,
          tickets: TicketService | None) -> Recordings:
    s = settings.recordings
    source: RecordingSource = (AriSource(ari) if s.fetch_from_ari or s.spool_dir is None
                               else SpoolSource(s.spool_dir, ari))
    store = RecordingStore(s, index, source, link_tickets=tickets.link_recordings if tickets else None)
    recorder = CallRecorder(ari, index, store, redis, settings.redis.prefix, s) if s.enabled else None
    return Recordings(index, store, recorder)
