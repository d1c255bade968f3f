"""Transcripts: what a switch said, with what legitimately differs between switches taken out.

Ids (channels, playbacks), timestamps, SIP Call-IDs, the hex counters in channel names and
the ports of externalMedia hosts differ from run to run and from switch to switch; everything
else — event types, their order, their fields and values, status codes, bodies — is compared
as it is. A transcript line is one event, in a compact and readable form::

    StasisStart args=['12315', 'general', ''] channel=caller:Ring
    PlaybackFinished playback=pb1(sound:hotline/x -> failed)

Channels are named by the scenario (``caller``, ``agent``) or get ``ch1``, ``ch2`` ... in the
order they first appear; playbacks get ``pb1``, ``pb2`` ...
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: ``ChannelVarset`` of variables that Asterisk sets for its own bookkeeping, which no ARI
#: application reads and the stand-in does not model (it models RTPAUDIOQOS*, which a SIP
#: channel's hang-up always carries): they are left out of transcripts.
UNMODELLED_VARIABLES = frozenset({"BRIDGEPEER", "BRIDGEPVTCALLID", "STASISSTATUS", "SIPDOMAIN"})
#: Event fields that differ by nature: when the event was sent, and by which Asterisk.
_VOLATILE = frozenset({"type", "timestamp", "asterisk_id", "application"})
_CHANNEL_ID = re.compile(r"\d+\.\d+")
_NAME = [
    # PJSIP/carrier-0000000c, PJSIP/1001-00000010: the counter is Asterisk's, per process.
    (re.compile(r"^(PJSIP/[^-]+)-[0-9a-f]{8}$"), r"\1-<n>"),
    # UnicastRTP/127.0.0.1:37258-0x7fd5240414c0: our host's port, then a pointer.
    (re.compile(r"^UnicastRTP/([\d.]+):\d+-0x[0-9a-f]+$"), r"UnicastRTP/\1:<port>-0x<ptr>"),
]
_SNOOP = re.compile(r"^Snoop/(.+)-[0-9a-f]{8}$")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")


class Transcript:
    """Turns one switch's events and answers into comparable lines and shapes."""

    def __init__(self, events: list[dict[str, Any]], **names: str) -> None:
        self.events = events
        #: Real id -> the name a scenario compares by.
        self.names: dict[str, str] = {v: k for k, v in names.items()}
        self._counters: dict[str, int] = {}

    def name(self, ident: str, as_: str) -> None:
        """Call the channel (or bridge, playback, recording) ``ident`` ``as_`` in transcripts."""
        self.names[ident] = as_

    def alias(self, ident: str, kind: str = "ch") -> str:
        if ident not in self.names:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            self.names[ident] = f"{kind}{self._counters[kind]}"
        return self.names[ident]

    # --- whole objects ------------------------------------------------------------------------

    def channel_name(self, name: str) -> str:
        for pattern, replacement in _NAME:
            if pattern.match(name):
                return pattern.sub(replacement, name)
        snoop = _SNOOP.match(name)
        if snoop:
            return f"Snoop/{self.alias(snoop.group(1))}-<n>"
        return name

    def channel(self, ch: dict[str, Any]) -> dict[str, Any]:
        """A Channel with every field, ids and volatile values replaced by what they are."""
        shape = dict(ch)
        assert _CHANNEL_ID.fullmatch(ch["id"]) or ch["id"] in self.names, f"channel id {ch['id']!r}"
        shape["id"] = self.alias(ch["id"])
        shape["name"] = self.channel_name(ch["name"])
        # A SIP channel's protocol_id is its Call-ID; other channels have none.
        shape["protocol_id"] = "<call-id>" if ch.get("protocol_id") else ""
        assert _TIME.fullmatch(ch["creationtime"]), ch["creationtime"]
        shape["creationtime"] = "<time>"
        return shape

    def bridge(self, bridge: dict[str, Any]) -> dict[str, Any]:
        shape = dict(bridge, channels=[self.alias(c) for c in bridge["channels"]])
        assert _TIME.fullmatch(bridge["creationtime"]), bridge["creationtime"]
        shape["creationtime"] = "<time>"
        return shape

    def playback(self, playback: dict[str, Any]) -> dict[str, Any]:
        shape = dict(playback, id=self.alias(playback["id"], "pb"))
        kind, _, ident = playback["target_uri"].partition(":")
        shape["target_uri"] = f"{kind}:{self.alias(ident) if kind == 'channel' else ident}"
        return shape

    # --- events as lines --------------------------------------------------------------------------

    def lines(self, events: Iterable[dict[str, Any]] | None = None) -> list[str]:
        return [self.line(e) for e in (self.events if events is None else events) if self.compared(e)]

    @staticmethod
    def compared(event: dict[str, Any]) -> bool:
        return not (event["type"] == "ChannelVarset" and event.get("variable") in UNMODELLED_VARIABLES)

    def line(self, event: dict[str, Any]) -> str:
        parts = [event["type"]]
        for key in sorted(event):
            if key in _VOLATILE:
                continue
            parts.append(f"{key}={self._value(key, event[key])}")
        return " ".join(parts)

    def _value(self, key: str, value: Any) -> str:
        if isinstance(value, dict) and "id" in value and "state" in value and "dialplan" in value:
            return f"{self.alias(value['id'])}:{value['state']}"  # a Channel
        if key == "playback":
            pb = self.playback(value)
            nxt = f" next {pb['next_media_uri']}" if "next_media_uri" in pb else ""
            return f"{pb['id']}({pb['media_uri']}{nxt} -> {pb['state']})"
        if key == "bridge":
            return f"{value['id']}{[self.alias(c) for c in value['channels']]}"
        if key == "recording":
            extra = {k: v for k, v in value.items() if k not in ("name", "state", "format", "target_uri")}
            return f"{value['name']}.{value['format']}({value['state']}{' ' + str(extra) if extra else ''})"
        if key == "endpoint":
            chans = [self.alias(c) for c in value["channel_ids"]]
            return f"{value['technology']}/{value['resource']}:{value['state']}{chans}"
        if key == "dialstring":
            return repr(re.sub(r":\d+/", ":<port>/", value))  # an externalMedia host's port
        if key == "value" and isinstance(value, str) and ("=" in value and ";" in value):
            return "<rtp stats>"  # RTPAUDIOQOS*: statistics of the call's media
        return repr(value)


def of_channel(events: list[dict[str, Any]], channel_id: str) -> list[dict[str, Any]]:
    """The events about one channel (as ``channel`` or as ``peer``), in order."""
    return [e for e in events if (e.get("channel") or e.get("peer") or {}).get("id") == channel_id]
