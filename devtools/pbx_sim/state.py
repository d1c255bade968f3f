"""The stand-in's objects — channels, bridges, playbacks, recordings — and their ARI JSON.

Each ``to_json`` produces exactly the model Asterisk 22 declares (``Channel``,
``Bridge``, ``Playback``, ``LiveRecording``): the tests check every one of them
against ``../shared/asterisk-ari``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


def ari_time(ts: float | None = None) -> str:
    """Asterisk's timestamp format: ``2026-11-24T10:00:00.123+0000``."""
    moment = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class CallerSide(Protocol):
    """The scripted caller on a channel, as the switch sees it (``callers.SimCall``).

    Declared here, below the callers, so that a channel can point at its caller without
    this module (which every other one imports) importing the callers and their engine.
    """

    #: DTMF the application sent towards the caller.
    dtmf_heard: list[str]

    def heard(self, media: str) -> None: ...
    def playback_finished(self, media: list[str], *, stopped: bool = False) -> None: ...
    def on_destroyed(self, cause: int) -> None: ...
    def frame(self, tick: int) -> bytes: ...


class SimError(Exception):
    """An ARI error answer: HTTP ``status`` with Asterisk's ``{"message": ...}`` body.

    ``key`` is the body's one field: ``message`` for Asterisk's ordinary errors, ``error``
    for its "Allocation failed" answer (``ast_ari_response_alloc_failed``), which is what
    originating to a phone with no registered contact gives (FIELD-NOTES).
    """

    def __init__(self, status: int, message: str, *, key: str = "message") -> None:
        super().__init__(f"{status} {message}")
        self.status, self.message, self.key = status, message, key


class Ids:
    """Channel ids as Asterisk makes them (``<epoch>.<sequence>``), names with hex counters."""

    def __init__(self) -> None:
        self._epoch = int(time.time())
        self._seq = itertools.count(1)
        self._names = itertools.count(1)

    def channel_id(self) -> str:
        return f"{self._epoch}.{next(self._seq)}"

    def suffix(self) -> str:
        return f"{next(self._names):08x}"


@dataclass
class SimChannel:
    id: str
    name: str
    caller_number: str = ""
    caller_name: str = ""
    #: The connected line: an originated channel's is the callerId it was dialled with; two
    #: channels in a bridge become each other's.
    connected_number: str = ""
    connected_name: str = ""
    #: What the dialler was given for this channel (``1001`` of ``PJSIP/1001``), for ``Dial``.
    dialstring: str = ""
    state: str = "Ring"
    context: str = ""
    exten: str = ""
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    language: str = "en"
    #: "caller" (dialled in), "originated" (agent leg), "external_media", "snoop".
    kind: str = "caller"
    created: float = field(default_factory=time.time)
    variables: dict[str, str] = field(default_factory=dict)
    #: The Stasis application this channel is in (None: in the dialplan or not yet in Stasis).
    stasis_app: str | None = None
    #: The application that made or last had this channel (who its bridge and playback
    #: events concern); whether that application still *hears* of it is ``subscriptions``.
    subscribed_app: str | None = None
    #: Applications subscribed to this channel's topic, counted as Asterisk counts them:
    #: being in Stasis is one (gone at StasisEnd), originating it over ARI one (kept until it
    #: is destroyed), ``POST /applications/{app}/subscription?eventSource=channel:<id>`` one.
    subscriptions: collections.Counter[str] = field(default_factory=collections.Counter)
    #: The PJSIP endpoint the channel is a call of (``PJSIP/carrier``, ``PJSIP/1001``), whose
    #: subscribers hear of it too; None for Snoop and UnicastRTP channels.
    endpoint: str | None = None
    #: The SIP Call-ID of a PJSIP channel (``protocol_id``); other channels have none.
    protocol_id: str = ""
    #: Asterisk's hang-up cause of the channel so far (0: none yet), and the SIP status it
    #: maps to for a PJSIP channel (``tech_cause``, 0: none).
    hangup_cause: int = 0
    tech_cause: int = 0
    #: Media flowed (a PJSIP channel that was answered): its hang-up reports RTP statistics.
    had_media: bool = False
    #: An originated channel whose dial is still going on (placed, not answered nor failed).
    dialling: bool = False
    bridge_id: str | None = None
    moh_class: str | None = None
    hangup_requested: bool = False
    destroyed: bool = False
    #: Resolved when the channel leaves Stasis: "continue" or "hangup".
    stasis_exit: asyncio.Future[str] | None = None
    #: Where ``continue`` sent it (context, extension, priority); None: the next priority.
    continue_at: tuple[str, str, int] | None = None
    call: CallerSide | None = None
    #: For external media: where RTP goes, and its payload format.
    external_host: tuple[str, int] | None = None
    media_format: str = ""
    #: For snoop channels: the channel spied on and the directions spied on and whispered into.
    snoop_target: str | None = None
    snoop_spy: str = "none"
    snoop_whisper: str = "none"
    #: Held (``POST /channels/{id}/hold``) and the muted directions ("in", "out") of ``/mute``.
    held: bool = False
    muted: set[str] = field(default_factory=set)
    #: A ringing phone in "manual" mode waits on this for someone to pick it up.
    pickup: asyncio.Event | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "protocol_id": self.protocol_id,
            "name": self.name,
            "state": self.state,
            "caller": {"name": self.caller_name, "number": self.caller_number},
            "connected": {"name": self.connected_name, "number": self.connected_number},
            "accountcode": "",
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": ari_time(self.created),
            "language": self.language,
        }


def sip_call_id() -> str:
    """A Call-ID as Asterisk's PJSIP makes them (a UUID), for ``protocol_id``."""
    return str(uuid.uuid4())


@dataclass
class SimBridge:
    id: str
    name: str
    bridge_type: str = "mixing"
    creator: str = "Stasis"
    app: str | None = None
    created: float = field(default_factory=time.time)
    channels: list[str] = field(default_factory=list)
    moh_class: str | None = None
    #: Applications following the bridge, counted as res_stasis counts them: a channel of the
    #: application joining adds one, its leaving over ARI takes it back, but a member that
    #: hangs up in the bridge leaves its count behind (FIELD-NOTES, docs/asterisk-behaviour.md).
    subscribers: collections.Counter[str] = field(default_factory=collections.Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "technology": "simple_bridge" if len(self.channels) <= 2 else "softmix",
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": self.creator,
            "name": self.name,
            "channels": list(self.channels),
            "creationtime": ari_time(self.created),
            # A mixing bridge made over ARI follows the talker for video (Asterisk 22's default).
            "video_mode": "talker",
        }


@dataclass
class SimPlayback:
    id: str
    media: list[str]
    target_uri: str
    language: str
    state: str = "queued"
    index: int = 0
    task: asyncio.Task[None] | None = None
    #: Stopped over ARI before its end (barge-in), rather than played out.
    stopped: bool = False

    @property
    def media_uri(self) -> str:
        return self.media[min(self.index, len(self.media) - 1)]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "media_uri": self.media_uri,
            "target_uri": self.target_uri,
            "language": self.language,
            "state": self.state,
        }
        if self.index + 1 < len(self.media):
            data["next_media_uri"] = self.media[self.index + 1]
        return data


@dataclass
class SimRecording:
    name: str
    format: str
    target_uri: str
    state: str = "queued"
    started: float = field(default_factory=time.monotonic)
    duration: int = 0
    cause: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "target_uri": self.target_uri,
            "state": self.state,
        }
        if self.state in ("done", "failed", "canceled"):
            data["duration"] = self.duration
        if self.cause:
            data["cause"] = self.cause
        return data
