"""Typed views of the ARI models and events this application uses.

Only the fields we read are typed; the full JSON stays in ``raw`` so that nothing
Asterisk sends is lost. Unknown event types parse to :class:`UnknownEvent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict


@dataclass(frozen=True, slots=True)
class Dialplan:
    context: str
    exten: str
    priority: int
    app_name: str = ""
    app_data: str = ""


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    dialplan: Dialplan
    language: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        caller = data.get("caller") or {}
        plan = data.get("dialplan") or {}
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            state=data.get("state", "Unknown"),
            caller_number=caller.get("number", ""),
            caller_name=caller.get("name", ""),
            dialplan=Dialplan(
                context=plan.get("context", ""),
                exten=plan.get("exten", ""),
                priority=int(plan.get("priority", 0)),
                app_name=plan.get("app_name", ""),
                app_data=plan.get("app_data", ""),
            ),
            language=data.get("language", ""),
            raw=data,
        )

    def in_stasis_app(self, app: str) -> bool:
        """True when the channel currently sits in ``Stasis(app,...)``."""
        if self.dialplan.app_name.lower() != "stasis":
            return False
        return self.dialplan.app_data.split(",", 1)[0] == app

    def stasis_args(self) -> list[str]:
        """The Stasis() arguments as the dialplan gave them (for resynchronization)."""
        parts = self.dialplan.app_data.split(",")
        return parts[1:]


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    name: str
    bridge_type: str
    channels: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bridge:
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            bridge_type=data.get("bridge_type", ""),
            channels=tuple(data.get("channels", [])),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Playback:
        return cls(
            id=data["id"],
            media_uri=data.get("media_uri", ""),
            target_uri=data.get("target_uri", ""),
            state=data.get("state", ""),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class LiveRecording:
    name: str
    format: str
    state: str
    target_uri: str
    duration: int | None
    cause: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveRecording:
        return cls(
            name=data["name"],
            format=data.get("format", ""),
            state=data.get("state", ""),
            target_uri=data.get("target_uri", ""),
            duration=data.get("duration"),
            cause=data.get("cause"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A phone or trunk (``PJSIP/1001``); ``online`` when it has a reachable contact."""

    technology: str
    resource: str
    state: str
    channel_ids: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoint:
        return cls(
            technology=data["technology"],
            resource=data["resource"],
            # Optional in the declaration: Asterisk leaves it out when it does not know.
            state=data.get("state", "unknown"),
            channel_ids=tuple(data.get("channel_ids", [])),
            raw=data,
        )

    @property
    def name(self) -> str:
        """``PJSIP/1001``: the form ``POST /channels?endpoint=`` takes."""
        return f"{self.technology}/{self.resource}"

    @property
    def online(self) -> bool:
        return self.state == "online"


# --- documents handed on as Asterisk sends them ----------------------------------
# Nothing here is parsed: these ARI models go to the caller as the decoded JSON, so their
# types are the declarations' own (applications.json, recordings.json, asterisk.json).


class Application(TypedDict):
    name: str
    channel_ids: list[str]
    bridge_ids: list[str]
    endpoint_ids: list[str]
    device_names: list[str]
    events_allowed: list[dict[str, Any]]
    events_disallowed: list[dict[str, Any]]


class StoredRecording(TypedDict):
    name: str
    format: str


class AsteriskInfo(TypedDict):
    # Every part is optional in the declaration (``only=`` asks for some of them).
    build: NotRequired[dict[str, Any]]
    system: NotRequired[dict[str, Any]]
    config: NotRequired[dict[str, Any]]
    status: NotRequired[dict[str, Any]]


# --- events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    application: str
    timestamp: str

    def route_key(self) -> str | None:
        """The key that orders this event: a channel id or ``bridge:<id>``."""
        return None


@dataclass(frozen=True, slots=True)
class ChannelEvent(Event):
    channel: Channel

    def route_key(self) -> str | None:
        return self.channel.id


@dataclass(frozen=True, slots=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(ChannelEvent):
    """A hang-up is on its way. A caller's BYE gives two: the first without a cause, then
    one with ``cause`` 16 and ``soft`` (FIELD-NOTES): handlers must take either as the end."""

    cause: int | None
    soft: bool


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(ChannelEvent):
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True)
class ChannelHold(ChannelEvent):
    """The channel's own phone put its call on hold (a re-INVITE ``a=sendonly``, FIELD-NOTES)."""

    #: The music on hold class the phone asked for, if any.
    musicclass: str | None


@dataclass(frozen=True, slots=True)
class ChannelUnhold(ChannelEvent):
    """The channel's phone took its call back from hold."""


@dataclass(frozen=True, slots=True)
class ChannelEnteredBridge(ChannelEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ChannelLeftBridge(ChannelEvent):
    bridge: Bridge


@dataclass(frozen=True, slots=True)
class ChannelVarset(Event):
    variable: str
    value: str
    channel_id: str | None

    def route_key(self) -> str | None:
        return self.channel_id


def _target_key(target_uri: str) -> str | None:
    kind, _, ident = target_uri.partition(":")
    if kind == "channel":
        return ident
    if kind == "bridge":
        return f"bridge:{ident}"
    return None


@dataclass(frozen=True, slots=True)
class PlaybackEvent(Event):
    playback: Playback

    def route_key(self) -> str | None:
        return _target_key(self.playback.target_uri)


@dataclass(frozen=True, slots=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackContinuing(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackFinished(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True)
class RecordingEvent(Event):
    recording: LiveRecording

    def route_key(self) -> str | None:
        return _target_key(self.recording.target_uri)


@dataclass(frozen=True, slots=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True)
class BridgeDestroyed(Event):
    bridge: Bridge

    def route_key(self) -> str | None:
        return f"bridge:{self.bridge.id}"


@dataclass(frozen=True, slots=True)
class Dial(Event):
    """A dialled channel's progress: ``dialstatus`` "" when the call is placed, then
    ``ANSWER``, ``BUSY``, ``NOANSWER``, ... (Asterisk's DIALSTATUS values)."""

    peer: Channel
    dialstatus: str
    dialstring: str

    def route_key(self) -> str | None:
        return self.peer.id


@dataclass(frozen=True, slots=True)
class EndpointStateChange(Event):
    """A subscribed endpoint went online or offline (its phone registered or lost its contact)."""

    endpoint: Endpoint

    def route_key(self) -> str | None:
        # One FIFO per endpoint: its changes are handled in the order they happened.
        return f"endpoint:{self.endpoint.name}"


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    raw: dict[str, Any] = field(repr=False)


def _base(d: dict[str, Any]) -> dict[str, Any]:
    return {"type": d["type"], "application": d.get("application", ""), "timestamp": d.get("timestamp", "")}


def _chan(d: dict[str, Any]) -> dict[str, Any]:
    return {**_base(d), "channel": Channel.from_json(d["channel"])}


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "StasisStart": lambda d: StasisStart(**_chan(d), args=tuple(d.get("args", []))),
    "StasisEnd": lambda d: StasisEnd(**_chan(d)),
    "ChannelDtmfReceived": lambda d: ChannelDtmfReceived(
        **_chan(d), digit=d["digit"], duration_ms=int(d.get("duration_ms", 0))
    ),
    "ChannelHangupRequest": lambda d: ChannelHangupRequest(
        **_chan(d), cause=d.get("cause"), soft=bool(d.get("soft", False))
    ),
    "ChannelDestroyed": lambda d: ChannelDestroyed(
        **_chan(d), cause=int(d.get("cause", 0)), cause_txt=d.get("cause_txt", "")
    ),
    "ChannelStateChange": lambda d: ChannelStateChange(**_chan(d)),
    "ChannelHold": lambda d: ChannelHold(**_chan(d), musicclass=d.get("musicclass") or None),
    "ChannelUnhold": lambda d: ChannelUnhold(**_chan(d)),
    "ChannelEnteredBridge": lambda d: ChannelEnteredBridge(**_chan(d), bridge=Bridge.from_json(d["bridge"])),
    "ChannelLeftBridge": lambda d: ChannelLeftBridge(**_chan(d), bridge=Bridge.from_json(d["bridge"])),
    "ChannelVarset": lambda d: ChannelVarset(
        **_base(d),
        variable=d.get("variable", ""),
        value=d.get("value", ""),
        channel_id=(d.get("channel") or {}).get("id"),
    ),
    "PlaybackStarted": lambda d: PlaybackStarted(**_base(d), playback=Playback.from_json(d["playback"])),
    "PlaybackContinuing": lambda d: PlaybackContinuing(**_base(d), playback=Playback.from_json(d["playback"])),
    "PlaybackFinished": lambda d: PlaybackFinished(**_base(d), playback=Playback.from_json(d["playback"])),
    "RecordingStarted": lambda d: RecordingStarted(**_base(d), recording=LiveRecording.from_json(d["recording"])),
    "RecordingFinished": lambda d: RecordingFinished(**_base(d), recording=LiveRecording.from_json(d["recording"])),
    "RecordingFailed": lambda d: RecordingFailed(**_base(d), recording=LiveRecording.from_json(d["recording"])),
    "BridgeDestroyed": lambda d: BridgeDestroyed(**_base(d), bridge=Bridge.from_json(d["bridge"])),
    "Dial": lambda d: Dial(
        **_base(d), peer=Channel.from_json(d["peer"]), dialstatus=d["dialstatus"], dialstring=d.get("dialstring", "")
    ),
    "EndpointStateChange": lambda d: EndpointStateChange(**_base(d), endpoint=Endpoint.from_json(d["endpoint"])),
}


class EventParseError(ValueError):
    """An event whose JSON lacks what its declaration requires."""


def parse_event(data: dict[str, Any]) -> Event:
    """Turn one decoded ``/ari/events`` message into a typed event."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventParseError(f"event without a type: {sorted(data)}")
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownEvent(**_base(data), raw=data)
    try:
        return parser(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise EventParseError(f"malformed {kind} event: {exc!r}") from exc
