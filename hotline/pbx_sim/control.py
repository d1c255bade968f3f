"""The stand-in's own control API (not ARI): place and drive scripted callers over HTTP.

So that someone running ``hotline pbx-sim`` next to ``hotline serve`` can make calls
by hand::

    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls?number=12315&caller_id=13800138000'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/calls/<channel id>/dtmf?digits=1'
    curl -u hotline:hotline 'http://127.0.0.1:8088/sim/calls'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/calls/<channel id>'
    curl -u hotline:hotline -X PUT 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001?mode=manual'
    curl -u hotline:hotline -X DELETE 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001/contact'
    curl -u hotline:hotline -X PUT 'http://127.0.0.1:8088/sim/endpoints/PJSIP/1001/contact'
    curl -u hotline:hotline -X POST 'http://127.0.0.1:8088/sim/recordings/faults?count=1'

A ``manual`` phone rings until the agent desktop answers it (simulated phone mode); the other
modes are ``answer`` (after ``answer_after_s``), ``busy``, ``no_answer`` and ``unavailable``.
Every phone is registered until its ``contact`` is deleted (the phone unregistered, or its
registration expired); ``PUT`` on the contact registers it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hotline.pbx_sim.callers import SimCall
from hotline.pbx_sim.engine import Endpoint
from hotline.pbx_sim.state import SimError

if TYPE_CHECKING:
    from hotline.pbx_sim.server import PbxSim


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


class ControlViews:
    def __init__(self, sim: "PbxSim") -> None:
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
        try:
            self._call(request).send_dtmf(request.query.get("digits", ""))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        return web.Response(status=204)

    async def hangup(self, request: web.Request) -> web.Response:
        await self._call(request).hangup()
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
