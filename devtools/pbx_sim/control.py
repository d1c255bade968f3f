"""The stand-in's own control API (not ARI): place and drive scripted callers over HTTP.

So that someone running ``python -m devtools pbx-sim`` next to ``hotline serve`` can make calls
by hand::

    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls?number=12315&caller_id=13800138000'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls/<channel id>/dtmf?digits=1'
    curl -u hotline:hotline 'http://127.0.0.1:8088/sim/calls'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/calls/<channel id>?cause=16'
    curl -u hotline:hotline -X PUT 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001?mode=manual'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001/contact'
    curl -u hotline:hotline -X PUT 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001/contact'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/recordings/faults?count=1'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/channels/<channel id>/hold'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/channels/<channel id>/hold'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/faults?method=POST&path=/addChannel$&status=503'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/faults?path=^/ari/bridges$&delay_s=6'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/faults'

A ``manual`` phone rings until the agent desktop answers it (simulated phone mode); the other
modes are ``answer`` (after ``answer_after_s``), ``busy``, ``no_answer`` and ``unavailable``.
Every phone is registered until its ``contact`` is deleted (the phone unregistered, or its
registration expired); ``PUT`` on the contact registers it again.

``/sim/channels/<id>/hold`` is the phone on that channel putting its call on hold (a re-INVITE
``a=sendonly``): Asterisk announces ``ChannelHold`` on that channel (``ChannelUnhold`` on
``DELETE``) and plays the other party nothing (FIELD-NOTES).

``/sim/faults`` makes ARI requests go wrong on purpose, as an overloaded Asterisk does: the
next ``count`` requests whose method is ``method`` (any when not given), whose path matches the
regular expression ``path`` and whose (decoded) query string matches ``query`` wait ``delay_s``
(a client with a shorter timeout gives up), then answer ``status`` with ``message`` without
being carried out, or, without ``status``, are carried out late as usual.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web

from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.engine import Endpoint, Engine
from devtools.pbx_sim.state import SimError


def describe(call: SimCall) -> dict[str, Any]:
    return {
        "channel_id": call.channel_id,
        "dialled": call.dialled,
        "caller_id": call.caller_number,
        "heard": call.played,
        "on_hold_music": call.on_hold_music,
        "on_hold_in_silence": call.on_hold_in_silence,
        "stasis_status": call.stasis_status,
        "ended": call.ended,
        "hangup_cause": call.hangup_cause,
    }


def phone_hold(engine: Engine, channel_id: str, on: bool, music_class: str | None = None) -> None:
    """The phone on ``channel_id`` puts its call on hold (``on``) or takes it back: Asterisk
    announces it on that channel, with the music class the phone's endpoint suggests unless
    ``music_class`` says otherwise, and does nothing else (the other party hears silence)."""
    ch = engine.channel(channel_id)
    if ch.hangup_requested:
        raise SimError(409, f"channel {channel_id} is hanging up")
    engine.phone_hold(ch, on, music_class)


@dataclass
class Fault:
    """Requests to answer wrongly on purpose (see the module docstring)."""

    path: re.Pattern[str]
    method: str | None = None
    query: re.Pattern[str] | None = None
    #: How many more requests it applies to.
    count: int = 1
    #: The answer; None: carried out as usual after the delay.
    status: int | None = None
    delay_s: float = 0.0
    message: str = "Injected fault"

    def matches(self, method: str, path: str, query: str) -> bool:
        return ((self.method is None or self.method == method) and self.path.search(path) is not None
                and (self.query is None or self.query.search(query) is not None))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path.pattern, "query": self.query.pattern if self.query else None,
                "count": self.count, "status": self.status, "delay_s": self.delay_s, "message": self.message}


class Faults:
    """The faults in force, and the middleware that applies them to ARI requests (not to the
    events WebSocket, not to this control API)."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []
        #: Faults applied so far, as ``(method, path, query)``.
        self.applied: list[tuple[str, str, str]] = []

    def inject(self, path: str, *, method: str | None = None, query: str | None = None, count: int = 1,
               status: int | None = None, delay_s: float = 0.0, message: str = "Injected fault") -> Fault:
        """Add a fault; ``ValueError`` with the reason when it makes no sense."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an error status (400..599)")
        if status is None and not delay_s:
            raise ValueError("give a status, a delay_s, or both")
        try:
            fault = Fault(re.compile(path), method.upper() if method else None,
                          re.compile(query) if query is not None else None, count, status, delay_s, message)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        self.pending.append(fault)
        return fault

    def clear(self) -> None:
        self.pending.clear()

    def _take(self, method: str, path: str, query: str) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, path, query):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                self.applied.append((method, path, query))
                return fault
        return None

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        path = request.path
        if not self.pending or not path.startswith("/ari/") or path == "/ari/events":
            return await handler(request)
        fault = self._take(request.method, path, unquote(request.query_string))
        if fault is None:
            return await handler(request)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is None:
            return await handler(request)
        raise SimError(fault.status, fault.message)


class Simulator(Protocol):
    """What the control API drives (``server.PbxSim``, which serves these views): declared
    here so that the server can build the views without the two modules importing each other."""

    @property
    def calls(self) -> Sequence[SimCall]: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def faults(self) -> Faults: ...

    async def place_call(self, dialled: str, *, caller_id: str = "") -> SimCall: ...
    def endpoint(self, name: str, *, answer_after_s: float = 0.0, mode: str = "answer") -> Endpoint: ...
    def set_registered(self, name: str, registered: bool) -> Endpoint: ...


class ControlViews:
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/sim/calls", self.list_calls),
            ("POST", "/sim/calls", self.place_call),
            ("POST", "/sim/calls/{channelId}/dtmf", self.dtmf),
            ("DELETE", "/sim/calls/{channelId}", self.hangup),
            ("PUT", "/sim/endpoints/{tech}/{resource}", self.set_endpoint),
            ("PUT", "/sim/endpoints/{tech}/{resource}/contact", self.register),
            ("DELETE", "/sim/endpoints/{tech}/{resource}/contact", self.unregister),
            ("POST", "/sim/recordings/faults", self.fail_recordings),
            ("POST", "/sim/channels/{channelId}/hold", self.phone_hold),
            ("DELETE", "/sim/channels/{channelId}/hold", self.phone_unhold),
            ("GET", "/sim/faults", self.list_faults),
            ("POST", "/sim/faults", self.add_fault),
            ("DELETE", "/sim/faults", self.clear_faults),
        ]

    def _call(self, request: web.Request) -> SimCall:
        channel_id = request.match_info["channelId"]
        for call in self._sim.calls:
            if call.channel_id == channel_id:
                return call
        raise SimError(404, f"no simulated call on channel {channel_id}")

    async def list_calls(self, request: web.Request) -> web.Response:
        return web.json_response([describe(c) for c in self._sim.calls])

    async def place_call(self, request: web.Request) -> web.Response:
        number = request.query.get("number", "")
        try:
            call = await self._sim.place_call(number, caller_id=request.query.get("caller_id", ""))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.json_response(describe(call), status=201)

    async def dtmf(self, request: web.Request) -> web.Response:
        """The caller keys ``digits``, each held ``duration_ms`` (what ChannelDtmfReceived says)."""
        try:
            duration = int(request.query.get("duration_ms", "120"))
            self._call(request).send_dtmf(request.query.get("digits", ""), duration_ms=duration)
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.Response(status=204)

    async def hangup(self, request: web.Request) -> web.Response:
        """The caller hangs up; ``cause``: the Q.850 cause of the BYE's Reason header."""
        raw = request.query.get("cause")
        if raw is not None and not raw.isdigit():
            raise SimError(400, "cause must be a Q.850 cause code (a whole number)")
        await self._call(request).hangup(int(raw) if raw is not None else None)
        return web.Response(status=204)

    async def fail_recordings(self, request: web.Request) -> web.Response:
        """The next ``count`` recordings fail with ``cause`` (``RecordingFailed``), as when
        Asterisk cannot write its spool."""
        try:
            count = int(request.query.get("count", "1"))
        except ValueError:
            raise SimError(400, "count must be a whole number") from None
        cause = request.query.get("cause", "Failed to answer channel")
        self._sim.engine.recorder.fail_next.extend([cause] * count)
        return web.Response(status=204)

    async def phone_hold(self, request: web.Request) -> web.Response:
        """The phone on the channel puts its call on hold (``musicclass``: the class it asks for)."""
        phone_hold(self._sim.engine, request.match_info["channelId"], True, request.query.get("musicclass") or None)
        return web.Response(status=204)

    async def phone_unhold(self, request: web.Request) -> web.Response:
        phone_hold(self._sim.engine, request.match_info["channelId"], False)
        return web.Response(status=204)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self._sim.faults.pending])

    async def add_fault(self, request: web.Request) -> web.Response:
        q = request.query
        if not q.get("path"):
            raise SimError(400, "path (a regular expression) is required")
        try:
            fault = self._sim.faults.inject(
                q["path"], method=q.get("method"), query=q.get("query"), count=int(q.get("count", "1")),
                status=int(q["status"]) if q.get("status") else None, delay_s=float(q.get("delay_s", "0")),
                message=q.get("message", "Injected fault"),
            )
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._sim.faults.clear()
        return web.Response(status=204)

    async def set_endpoint(self, request: web.Request) -> web.Response:
        """How the phone ``<tech>/<resource>`` answers when the application calls it."""
        name = f"{request.match_info['tech']}/{request.match_info['resource']}"
        try:
            after = float(request.query.get("answer_after_s", "0"))
            device = self._sim.endpoint(name, answer_after_s=after, mode=request.query.get("mode", "answer"))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.json_response(_endpoint(name, device))

    async def register(self, request: web.Request) -> web.Response:
        """The phone registers: it is ``online`` and can be called."""
        return self._set_registered(request, True)

    async def unregister(self, request: web.Request) -> web.Response:
        """The phone's contact is gone: ``offline``, and originating to it fails (500)."""
        return self._set_registered(request, False)

    def _set_registered(self, request: web.Request, registered: bool) -> web.Response:
        name = f"{request.match_info['tech']}/{request.match_info['resource']}"
        try:
            device = self._sim.set_registered(name, registered)
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.json_response(_endpoint(name, device))


def _endpoint(name: str, device: Endpoint) -> dict[str, Any]:
    return {"endpoint": name, "mode": device.mode, "answer_after_s": device.answer_after_s,
            "registered": device.registered}
