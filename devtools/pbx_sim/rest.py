"""ARI REST views of the stand-in: Asterisk 22's paths, parameters, status codes and bodies.

Views are thin: they read parameters as Asterisk does (a parameter given twice keeps
its last value, lists are comma-separated, ``true``/``false``), call the
:class:`~devtools.pbx_sim.engine.Engine` and turn a :class:`SimError` into Asterisk's
``{"message": ...}`` answer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from devtools.pbx_sim.engine import Engine
from devtools.pbx_sim.state import SimError, ari_time

log = logging.getLogger(__name__)

View = Callable[[web.Request], Awaitable[web.StreamResponse]]

ASTERISK_VERSION = "22.10.1"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _created(data: Any, location: str) -> web.Response:
    """201 with where the new resource lives, as Asterisk answers a play or a record."""
    response = web.json_response(data, status=201)
    response.headers["Location"] = location
    return response


def _no_content() -> web.Response:
    return web.Response(status=204)


def error(status: int, message: str, key: str = "message") -> web.Response:
    return web.json_response({key: message}, status=status)


def last(request: web.Request, name: str) -> str | None:
    """A query parameter's value as Asterisk reads it: given twice, the last one counts.

    Asterisk's generated request parsers assign each occurrence in turn, so
    ``?media=sound:a&media=sound:b`` plays only ``sound:b`` (FIELD-NOTES).
    """
    values = request.query.getall(name, [])
    return values[-1] if values else None


def _one(request: web.Request, name: str, *, required: bool = False, default: str | None = None) -> str | None:
    value = last(request, name)
    if value is None and required:
        raise SimError(400, f"{name}: Missing required field")
    return value if value is not None else default


def _many(request: web.Request, name: str, *, required: bool = False) -> list[str]:
    """A list parameter: one comma-separated value (the last one, when given twice)."""
    values = [v for v in (last(request, name) or "").split(",") if v]
    if not values and required:
        raise SimError(400, f"{name}: Missing required field")
    return values


def _int(request: web.Request, name: str, default: int) -> int:
    raw = last(request, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(400, f"{name}: expected an integer, got {raw!r}") from None


def _choice(request: web.Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    given = last(request, name)
    value = default if given is None else given
    if value not in allowed:
        raise SimError(400, f"{name}: Invalid value {value!r}")
    return value


def _moh_class(request: web.Request) -> str:
    """``mohClass``; without one (or empty) Asterisk plays the class ``default``."""
    return _one(request, "mohClass") or "default"


def _args(request: web.Request) -> list[str]:
    raw = last(request, "appArgs")
    return raw.split(",") if raw else []


class AriViews:
    def __init__(self, engine: Engine) -> None:
        self.e = engine

    def routes(self) -> list[tuple[str, str, View]]:
        c = "/ari/channels/{channelId}"
        b = "/ari/bridges/{bridgeId}"
        return [
            ("GET", "/ari/asterisk/info", self.asterisk_info),
            ("GET", "/ari/asterisk/ping", self.asterisk_ping),
            ("GET", "/ari/applications", self.applications),
            ("GET", "/ari/applications/{name}", self.application),
            ("POST", "/ari/applications/{name}/subscription", self.subscribe),
            ("DELETE", "/ari/applications/{name}/subscription", self.unsubscribe),
            ("PUT", "/ari/applications/{name}/eventFilter", self.event_filter),
            ("GET", "/ari/endpoints", self.list_endpoints),
            ("GET", "/ari/endpoints/{tech}", self.list_endpoints),
            ("GET", "/ari/endpoints/{tech}/{resource}", self.get_endpoint),
            ("GET", "/ari/channels", self.list_channels),
            ("POST", "/ari/channels", self.originate),
            ("POST", "/ari/channels/externalMedia", self.external_media),
            ("GET", c, self.get_channel),
            ("DELETE", c, self.hangup),
            ("POST", c + "/answer", self.answer),
            ("POST", c + "/ring", self.ring),
            ("DELETE", c + "/ring", self.ring_stop),
            ("POST", c + "/continue", self.continue_in_dialplan),
            ("POST", c + "/play", self.play_channel),
            ("POST", c + "/play/{playbackId}", self.play_channel),
            ("POST", c + "/dtmf", self.dtmf),
            ("POST", c + "/hold", self.hold_start),
            ("DELETE", c + "/hold", self.hold_stop),
            ("POST", c + "/mute", self.mute_start),
            ("DELETE", c + "/mute", self.mute_stop),
            ("POST", c + "/moh", self.moh_start),
            ("DELETE", c + "/moh", self.moh_stop),
            ("GET", c + "/variable", self.get_variable),
            ("POST", c + "/variable", self.set_variable),
            ("POST", c + "/snoop", self.snoop),
            ("POST", c + "/snoop/{snoopId}", self.snoop),
            ("POST", c + "/record", self.record_channel),
            ("GET", "/ari/bridges", self.list_bridges),
            ("POST", "/ari/bridges", self.create_bridge),
            ("GET", b, self.get_bridge),
            ("DELETE", b, self.destroy_bridge),
            ("POST", b + "/addChannel", self.add_channel),
            ("POST", b + "/removeChannel", self.remove_channel),
            ("POST", b + "/play", self.play_bridge),
            ("POST", b + "/play/{playbackId}", self.play_bridge),
            ("POST", b + "/moh", self.bridge_moh_start),
            ("DELETE", b + "/moh", self.bridge_moh_stop),
            ("POST", b + "/record", self.record_bridge),
            ("GET", "/ari/playbacks/{playbackId}", self.get_playback),
            ("DELETE", "/ari/playbacks/{playbackId}", self.stop_playback),
            ("GET", "/ari/recordings/stored", self.stored_recordings),
            ("GET", "/ari/recordings/stored/{name}", self.stored_recording),
            ("DELETE", "/ari/recordings/stored/{name}", self.delete_stored_recording),
            ("GET", "/ari/recordings/stored/{name}/file", self.stored_recording_file),
            ("GET", "/ari/recordings/live/{name}", self.live_recording),
            ("DELETE", "/ari/recordings/live/{name}", self.cancel_recording),
            ("POST", "/ari/recordings/live/{name}/stop", self.stop_recording),
        ]

    # --- asterisk and applications ------------------------------------------------------

    async def asterisk_info(self, request: web.Request) -> web.Response:
        return _json({
            "build": {"os": "Linux", "kernel": "6.1.0", "options": "", "machine": "x86_64",
                      "date": "2026-10-01 00:00:00 UTC", "user": "hotline"},
            "system": {"version": ASTERISK_VERSION, "entity_id": "02:42:ac:11:00:02"},
            "config": {"name": "hotline-pbx-sim", "default_language": "en",
                       "setid": {"user": "asterisk", "group": "asterisk"}},
            "status": {"startup_time": ari_time(), "last_reload_time": ari_time()},
        })

    async def asterisk_ping(self, request: web.Request) -> web.Response:
        return _json({"asterisk_id": "02:42:ac:11:00:02", "ping": "pong", "timestamp": ari_time()})

    def _application(self, name: str) -> dict[str, Any]:
        """What the application is subscribed to: channels, bridges, endpoints (counted > 0)."""
        return {
            "name": name,
            "channel_ids": sorted(c.id for c in self.e.channels.values() if c.subscriptions[name] > 0),
            "bridge_ids": sorted(b.id for b in self.e.bridges.values() if b.subscribers[name] > 0),
            "endpoint_ids": sorted(src for src, count in self.e.apps.endpoint_sources(name).items() if count > 0),
            "device_names": [],
            "events_allowed": [{"type": t} for t in self.e.apps.filter_of(name)[0]],
            "events_disallowed": [{"type": t} for t in self.e.apps.filter_of(name)[1]],
        }

    async def applications(self, request: web.Request) -> web.Response:
        return _json([self._application(n) for n in self.e.apps.names()])

    async def application(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not self.e.apps.known(name):
            raise SimError(404, "Application not found")
        return _json(self._application(name))

    async def subscribe(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.e.subscribe(name, _many(request, "eventSource"), True)
        return _json(self._application(name))

    async def event_filter(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not self.e.apps.known(name):
            raise SimError(404, "Application not found")
        body = await _body(request)
        lists = {key: _event_types(body[key]) if key in body else None for key in ("allowed", "disallowed")}
        self.e.apps.set_filter(name, lists["allowed"], lists["disallowed"])
        return _json(self._application(name))

    async def unsubscribe(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.e.subscribe(name, _many(request, "eventSource"), False)
        return _json(self._application(name))

    # --- endpoints ------------------------------------------------------------------------

    async def list_endpoints(self, request: web.Request) -> web.Response:
        tech = request.match_info.get("tech")
        names = self.e.endpoint_names(tech)
        if tech is not None and tech != "PJSIP":
            raise SimError(404, f"No Endpoints found - invalid tech {tech}")
        return _json([self.e.endpoint_json(n) for n in names])

    async def get_endpoint(self, request: web.Request) -> web.Response:
        return _json(self.e.endpoint_json(f"{request.match_info['tech']}/{request.match_info['resource']}"))

    # --- channels -------------------------------------------------------------------------

    async def list_channels(self, request: web.Request) -> web.Response:
        return _json([c.to_json() for c in self.e.channels.values()])

    async def get_channel(self, request: web.Request) -> web.Response:
        return _json(self.e.channel(request.match_info["channelId"]).to_json())

    async def originate(self, request: web.Request) -> web.Response:
        endpoint = _one(request, "endpoint", required=True)
        app = _one(request, "app")
        if app is None:
            raise SimError(400, "The stand-in originates into a Stasis application only: app is required")
        body = await _body(request)
        ch = self.e.originate(endpoint or "", app, _args(request), _one(request, "callerId", default="") or "",
                              _int(request, "timeout", 30), _one(request, "channelId"))
        ch.variables.update({str(k): str(v) for k, v in (body.get("variables") or {}).items()})
        return _json(ch.to_json())

    async def external_media(self, request: web.Request) -> web.Response:
        ch = self.e.external_media(
            _one(request, "app", required=True) or "",
            _one(request, "external_host"),
            _one(request, "format", required=True) or "",
            _choice(request, "transport", ("udp", "tcp", "websocket"), "udp"),
            _choice(request, "encapsulation", ("rtp", "audiosocket", "none"), "rtp"),
            _one(request, "channelId"),
        )
        # The answer (only it) shows the channel's variables: where to send audio back to.
        local = {k: ch.variables[k] for k in ("UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT")}
        return _json({**ch.to_json(), "channelvars": local})

    async def hangup(self, request: web.Request) -> web.Response:
        self.e.hangup_by_id(request.match_info["channelId"], _one(request, "reason_code"), _one(request, "reason"))
        return _no_content()

    async def answer(self, request: web.Request) -> web.Response:
        self.e.answer(request.match_info["channelId"])
        return _no_content()

    async def ring(self, request: web.Request) -> web.Response:
        self.e.stasis_channel(request.match_info["channelId"])
        return _no_content()

    ring_stop = ring

    async def continue_in_dialplan(self, request: web.Request) -> web.Response:
        # Asterisk reads the priority with atoi(): what is not a number is 0, "not given".
        digits = re.match(r"\s*[+-]?\d+", _one(request, "priority") or "")
        self.e.continue_in_dialplan(request.match_info["channelId"], context=_one(request, "context") or "",
                                    extension=_one(request, "extension") or "",
                                    priority=int(digits.group()) if digits else None,
                                    label=_one(request, "label") or "")
        return _no_content()

    async def play_channel(self, request: web.Request) -> web.Response:
        ch = self.e.stasis_channel(request.match_info["channelId"])
        playback_id = request.match_info.get("playbackId") or _one(request, "playbackId")
        playback = self.e.play(f"channel:{ch.id}", _many(request, "media", required=True), _one(request, "lang"),
                               playback_id, ch.language)
        return _created(playback.to_json(), f"/ari/playbacks/{playback.id}")

    async def dtmf(self, request: web.Request) -> web.Response:
        ch = self.e.stasis_channel(request.match_info["channelId"])
        digits = _one(request, "dtmf")
        if not digits:
            raise SimError(400, "DTMF is required")
        if ch.call is not None:
            ch.call.dtmf_heard.extend(digits)
        return _no_content()

    async def hold_start(self, request: web.Request) -> web.Response:
        self.e.hold(request.match_info["channelId"], True)
        return _no_content()

    async def hold_stop(self, request: web.Request) -> web.Response:
        self.e.hold(request.match_info["channelId"], False)
        return _no_content()

    async def mute_start(self, request: web.Request) -> web.Response:
        direction = _choice(request, "direction", ("both", "in", "out"), "both")
        self.e.mute(request.match_info["channelId"], direction, True)
        return _no_content()

    async def mute_stop(self, request: web.Request) -> web.Response:
        direction = _choice(request, "direction", ("both", "in", "out"), "both")
        self.e.mute(request.match_info["channelId"], direction, False)
        return _no_content()

    async def moh_start(self, request: web.Request) -> web.Response:
        # 204 whether or not the class exists: the caller may then hear nothing (FIELD-NOTES).
        self.e.start_moh(request.match_info["channelId"], _moh_class(request))
        return _no_content()

    async def moh_stop(self, request: web.Request) -> web.Response:
        self.e.stop_moh(request.match_info["channelId"])
        return _no_content()

    async def get_variable(self, request: web.Request) -> web.Response:
        ch = self.e.stasis_channel(request.match_info["channelId"])
        name = _one(request, "variable", required=True) or ""
        if name not in ch.variables:
            raise SimError(404, "Provided variable was not found")
        return _json({"value": ch.variables[name]})

    async def set_variable(self, request: web.Request) -> web.Response:
        ch = self.e.stasis_channel(request.match_info["channelId"])
        name = _one(request, "variable", required=True) or ""
        value = _one(request, "value", default="") or ""
        ch.variables[name] = value
        self.e.emit_channel(ch, "ChannelVarset", variable=name, value=value)
        return _no_content()

    async def snoop(self, request: web.Request) -> web.Response:
        directions = ("none", "both", "out", "in")
        ch = self.e.snoop(
            request.match_info["channelId"], _one(request, "app", required=True) or "",
            _choice(request, "spy", directions, "none"), _choice(request, "whisper", directions, "none"),
            _args(request), request.match_info.get("snoopId") or _one(request, "snoopId"),
        )
        return _json(ch.to_json())

    async def record_channel(self, request: web.Request) -> web.Response:
        ch = self.e.stasis_channel(request.match_info["channelId"])
        return self._record(request, f"channel:{ch.id}")

    def _record(self, request: web.Request, target: str) -> web.Response:
        recording = self.e.recorder.start(
            _one(request, "name", required=True) or "", _one(request, "format", required=True) or "",
            target, _choice(request, "ifExists", ("fail", "overwrite", "append"), "fail"),
        )
        return _created(recording.to_json(), f"/ari/recordings/live/{recording.name}")

    # --- bridges --------------------------------------------------------------------------

    async def list_bridges(self, request: web.Request) -> web.Response:
        return _json([b.to_json() for b in self.e.bridges.values()])

    async def create_bridge(self, request: web.Request) -> web.Response:
        bridge = self.e.create_bridge(_one(request, "type", default="mixing") or "mixing", _one(request, "bridgeId"),
                                      _one(request, "name", default="") or "")
        return _json(bridge.to_json())

    async def get_bridge(self, request: web.Request) -> web.Response:
        return _json(self.e.bridge(request.match_info["bridgeId"]).to_json())

    async def destroy_bridge(self, request: web.Request) -> web.Response:
        self.e.destroy_bridge(request.match_info["bridgeId"])
        return _no_content()

    async def add_channel(self, request: web.Request) -> web.Response:
        self.e.add_to_bridge(request.match_info["bridgeId"], _many(request, "channel", required=True))
        return _no_content()

    async def remove_channel(self, request: web.Request) -> web.Response:
        self.e.remove_from_bridge(request.match_info["bridgeId"], _many(request, "channel", required=True))
        return _no_content()

    async def play_bridge(self, request: web.Request) -> web.Response:
        bridge = self.e.bridge(request.match_info["bridgeId"])
        playback_id = request.match_info.get("playbackId") or _one(request, "playbackId")
        playback = self.e.play(f"bridge:{bridge.id}", _many(request, "media", required=True), _one(request, "lang"),
                               playback_id, "en")
        return _created(playback.to_json(), f"/ari/playbacks/{playback.id}")

    async def bridge_moh_start(self, request: web.Request) -> web.Response:
        self.e.start_bridge_moh(request.match_info["bridgeId"], _moh_class(request))
        return _no_content()

    async def bridge_moh_stop(self, request: web.Request) -> web.Response:
        self.e.stop_bridge_moh(request.match_info["bridgeId"])
        return _no_content()

    async def record_bridge(self, request: web.Request) -> web.Response:
        bridge = self.e.bridge(request.match_info["bridgeId"])
        return self._record(request, f"bridge:{bridge.id}")

    # --- playbacks and recordings -------------------------------------------------------------

    async def get_playback(self, request: web.Request) -> web.Response:
        return _json(self.e.player.get(request.match_info["playbackId"]).to_json())

    async def stop_playback(self, request: web.Request) -> web.Response:
        self.e.player.stop(request.match_info["playbackId"])
        return _no_content()

    async def stored_recordings(self, request: web.Request) -> web.Response:
        return _json([{"name": n, "format": f} for n, f in self.e.recorder.stored()])

    async def stored_recording(self, request: web.Request) -> web.Response:
        path = self.e.recorder.stored_path(request.match_info["name"])
        return _json({"name": path.stem, "format": path.suffix[1:]})

    async def delete_stored_recording(self, request: web.Request) -> web.Response:
        self.e.recorder.stored_path(request.match_info["name"]).unlink()
        return _no_content()

    async def stored_recording_file(self, request: web.Request) -> web.Response:
        path = self.e.recorder.stored_path(request.match_info["name"])
        content_type = "audio/wav" if path.suffix == ".wav" else "application/octet-stream"
        return web.Response(body=path.read_bytes(), content_type=content_type)

    async def live_recording(self, request: web.Request) -> web.Response:
        return _json(self.e.recorder.get(request.match_info["name"]).to_json())

    async def stop_recording(self, request: web.Request) -> web.Response:
        self.e.recorder.stop(request.match_info["name"])
        return _no_content()

    async def cancel_recording(self, request: web.Request) -> web.Response:
        self.e.recorder.stop(request.match_info["name"], cancel=True)
        return _no_content()


def _event_types(listed: Any) -> list[str]:
    """An event filter's list: objects each with a ``type`` (Asterisk: 400 otherwise)."""
    if not isinstance(listed, list) or not all(isinstance(i, dict) and isinstance(i.get("type"), str)
                                                for i in listed):
        raise SimError(400, "Invalid format definition")
    return [i["type"] for i in listed]


async def _body(request: web.Request) -> dict[str, Any]:
    # body_exists, not can_read_body: the traffic middleware may have read it already (the
    # text is kept), after which can_read_body says False.
    if not request.body_exists:
        return {}
    try:
        data = json.loads(await request.text() or "{}")
    except ValueError:
        raise SimError(400, "Malformed JSON body") from None
    if not isinstance(data, dict):
        raise SimError(400, "JSON body must be an object")
    return data
