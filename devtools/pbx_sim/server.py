"""``PbxSim``: a stand-in for Asterisk 22 that speaks ARI and runs our real dialplan.

It serves ``/ari/...`` (REST) and ``/ari/events`` (WebSocket) with Asterisk's
authentication (HTTP Basic or ``api_key=user:pass``), places scripted callers on the
carrier trunk, runs each one through ``dialplans/extensions.conf`` and sends RTP to
externalMedia hosts. An ``on_traffic`` hook sees every request, response and event,
which the tests use to check all of them against Asterisk's own declarations.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from devtools.pbx_sim.apps import AppConnection, Applications, TrafficHook
from devtools.pbx_sim.asterisk_conf import moh_classes, pjsip_endpoint_options
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.control import ControlViews, Faults
from devtools.pbx_sim.dialplan import Dialplan
from devtools.pbx_sim.engine import Endpoint, Engine
from devtools.pbx_sim.media import RtpStreamer
from devtools.pbx_sim.rest import AriViews, error, last
from devtools.pbx_sim.state import SimChannel, SimError
from queues.kept_bridges import is_kept_idle

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIALPLAN = PROJECT_ROOT / "dialplans" / "extensions.conf"
#: The context of calls from the carrier trunk (pjsip.conf endpoint "carrier").
INBOUND_CONTEXT = "from-pstn"


class PbxSim:
    def __init__(
        self,
        *,
        username: str = "hotline",
        password: str = "hotline",
        dialplan_path: Path = DEFAULT_DIALPLAN,
        sounds_dir: Path | None = None,
        recordings_dir: Path = Path("var/recordings"),
        default_playback_s: float = 0.05,
        time_scale: float = 1.0,
        on_traffic: TrafficHook | None = None,
    ) -> None:
        self._credentials = (username, password)
        self.dialplan = Dialplan.load(dialplan_path)
        # The other configuration files are read from beside the dialplan, as Asterisk
        # reads them all from /etc/asterisk.
        config_dir = Path(dialplan_path).parent
        self._on_traffic = on_traffic
        self.apps = Applications(on_traffic)
        endpoints = pjsip_endpoint_options(config_dir / "pjsip.conf")
        self.engine = Engine(self.apps, sounds_dir=sounds_dir, recordings_dir=recordings_dir,
                             default_playback_s=default_playback_s, time_scale=time_scale,
                             configured_endpoints=list(endpoints),
                             moh_classes=moh_classes(config_dir / "musiconhold.conf"),
                             endpoint_options=endpoints)
        self.engine.dialplan = self.dialplan
        self.rtp = RtpStreamer(self.engine)
        #: ARI requests made to fail or hang on purpose (control API ``/sim/faults``).
        self.faults = Faults()
        self.calls: list[SimCall] = []
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.url = ""

    # --- life cycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # Faults innermost: only authorised ARI requests, answered as errors are, seen by the traffic hook.
        app = web.Application(middlewares=[self._traffic, self._errors, self._auth, self.faults.middleware])
        app.router.add_get("/ari/events", self._events)
        for method, path, view in [*AriViews(self.engine).routes(), *ControlViews(self).routes()]:
            app.router.add_route(method, path, view)
        # A short shutdown: a test's stand-in must not wait a minute for a client that went away.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # The runner's one site: its address tells the port picked when port 0 was asked for.
        bound = self._runner.addresses[0]
        self.url = f"http://{bound[0]}:{bound[1]}"
        await self.rtp.start()
        log.info("Asterisk stand-in serving ARI at %s/ari", self.url)

    async def stop(self) -> None:
        await self.engine.close()
        await self.rtp.close()
        await self.apps.close()
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what tests and the demo drive ----------------------------------------------------

    def app_connected(self, name: str) -> bool:
        return self.apps.connected(name)

    async def place_call(self, dialled: str, *, caller_id: str = "", context: str = INBOUND_CONTEXT) -> SimCall:
        """A caller on the carrier trunk dials ``dialled``; the dialplan takes it from there."""
        if not dialled or not all(c.isdigit() or c in "*#" for c in dialled):
            raise ValueError(f"cannot dial {dialled!r}: digits, * and # only")
        ch = self.engine.new_channel(f"PJSIP/carrier-{self.engine.ids.suffix()}", caller_number=caller_id,
                                     context=context, exten=dialled, state="Ring")
        call = SimCall(self.engine, ch, dialled)
        self.calls.append(call)
        self.engine.spawn(self.dialplan.run(context, dialled, call.dialplan_host), f"dialplan:{ch.id}")
        await asyncio.sleep(0)
        return call

    def endpoint(self, name: str, *, answer_after_s: float = 0.0, mode: str = "answer") -> Endpoint:
        """Set how a device (``PJSIP/1001``) answers when the application calls it.

        Whether it is registered stays as it was (see :meth:`set_registered`).
        """
        registered = self.engine.device(name).registered
        device = self.engine.endpoints[name] = Endpoint(answer_after_s, mode, registered=registered)
        return device

    def set_registered(self, name: str, registered: bool) -> Endpoint:
        """The phone ``PJSIP/1001`` registers (``True``) or loses its contact (``False``).

        Applications subscribed to it get ``EndpointStateChange`` (online / offline); while
        it is unregistered, originating to it answers 500 ``{"error": "Allocation failed"}``.
        """
        try:
            return self.engine.set_registered(name, registered)
        except SimError as exc:
            raise ValueError(f"{name}: not a PJSIP endpoint ({exc.message})") from None

    def channel(self, channel_id: str) -> SimChannel | None:
        return self.engine.channels.get(channel_id)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no channel and no bridge is left (nothing leaked) but the agents' bridges,
        empty between their calls (the application keeps them: ``queues.kept_bridges``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.engine.channels or self.left_bridges():
            if loop.time() > deadline:
                raise AssertionError(
                    f"still {len(self.engine.channels)} channel(s) {sorted(self.engine.channels)} and "
                    f"{len(self.left_bridges())} bridge(s) {self.left_bridges()}"
                )
            await asyncio.sleep(0.02)

    def left_bridges(self) -> list[str]:
        """The bridges that are not an agent's, idle between their calls."""
        return sorted(b.id for b in self.engine.bridges.values() if not is_kept_idle(b.name, b.channels))

    # --- the events WebSocket ---------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        names = [n for n in (last(request, "app") or "").split(",") if n]
        if not names:
            raise SimError(400, "app: Missing required field")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.add(ws)
        subscribe_all = last(request, "subscribeAll") == "true"
        conns = [AppConnection(name, ws, subscribe_all) for name in names]
        for conn in conns:
            self.apps.register(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            for conn in conns:
                self.apps.unregister(conn)
            self._sockets.discard(ws)
        return ws

    # --- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._authorized(request):
            return error(401, "Authentication required")
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        user, password = self._credentials
        api_key = request.query.get("api_key")
        if api_key is not None:
            return api_key == f"{user}:{password}"
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return given == f"{user}:{password}"

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as exc:
            return error(exc.status, exc.message, exc.key)
        except web.HTTPNotFound:
            return error(404, "Resource not found")
        except web.HTTPMethodNotAllowed:
            return error(405, "Invalid method")

    @web.middleware
    async def _traffic(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        hook = self._on_traffic
        if hook is None or not request.path.startswith("/ari/") or request.path == "/ari/events":
            return await handler(request)
        body = None
        if request.can_read_body:
            text = await request.text()
            body = json.loads(text) if text.strip().startswith("{") else text or None
        hook("request", {"method": request.method, "path": request.path, "query": list(request.query.items()),
                         "body": body})
        response = await handler(request)
        hook("response", {"method": request.method, "path": request.path, "status": response.status,
                          "body": _response_body(response)})
        return response


def _response_body(response: web.StreamResponse) -> Any:
    raw = getattr(response, "body", None)
    if not raw:
        return None
    if response.content_type == "application/json":
        return json.loads(bytes(raw))
    return bytes(raw)
