"""Stasis applications as Asterisk keeps them: registered while a WebSocket is open.

An application exists for as long as a client holds ``/ari/events?app=<name>`` open.
While it is gone, ``Stasis(<name>)`` fails at once and events for it are dropped —
Asterisk keeps no backlog and replays nothing on reconnect (FIELD-NOTES). A second
connection for the same name replaces the first, which gets ``ApplicationReplaced``.

Events are written to each socket by one writer task per connection, so they leave in
exactly the order the stand-in produced them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from hotline.pbx_sim.state import ari_time

log = logging.getLogger(__name__)

TrafficHook = Callable[[str, dict[str, Any]], None]

#: Our stand-in's entity id (Asterisk's is the host's MAC address).
ASTERISK_ID = "02:42:ac:11:00:02"


@dataclass
class AppConnection:
    name: str
    ws: web.WebSocketResponse
    subscribe_all: bool = False
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None
    #: ``POST /applications/{app}/subscription`` sources: ``endpoint:PJSIP/1001`` (one
    #: endpoint) or ``endpoint:PJSIP`` (all of a technology). They belong to this
    #: connection: a client subscribes again after it reconnects.
    event_sources: set[str] = field(default_factory=set)

    async def write(self) -> None:
        while (message := await self.outbox.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return


class Applications:
    def __init__(self, on_traffic: TrafficHook | None = None) -> None:
        self._conns: dict[str, AppConnection] = {}
        self._on_traffic = on_traffic
        self.events_sent = 0

    def names(self) -> list[str]:
        return sorted(self._conns)

    def connected(self, name: str) -> bool:
        return name in self._conns

    def register(self, conn: AppConnection) -> None:
        old = self._conns.get(conn.name)
        if old is not None:
            self._send(old, {"type": "ApplicationReplaced"})
            old.outbox.put_nowait(None)
        self._conns[conn.name] = conn
        conn.writer = asyncio.get_running_loop().create_task(conn.write(), name=f"ari-ws:{conn.name}")
        log.info("application %r registered", conn.name)

    def unregister(self, conn: AppConnection) -> None:
        if self._conns.get(conn.name) is conn:
            del self._conns[conn.name]
            log.info("application %r unregistered (WebSocket closed)", conn.name)
        conn.outbox.put_nowait(None)

    def emit(self, app: str | None, event_type: str, **payload: Any) -> None:
        """Send one event to ``app`` if it is connected; otherwise it is lost, as in Asterisk."""
        if app is None:
            return
        conn = self._conns.get(app)
        if conn is None:
            return
        self._send(conn, {"type": event_type, **payload})

    def subscriptions(self, app: str) -> set[str]:
        """The event sources ``app`` subscribed to (``KeyError`` if it is not connected)."""
        return self._conns[app].event_sources

    def emit_endpoint(self, technology: str, resource: str, event_type: str, **payload: Any) -> None:
        """Send an endpoint's event to every application subscribed to it or to its technology."""
        wanted = {f"endpoint:{technology}/{resource}", f"endpoint:{technology}"}
        for conn in list(self._conns.values()):
            if conn.event_sources & wanted:
                self._send(conn, {"type": event_type, **payload})

    def _send(self, conn: AppConnection, body: dict[str, Any]) -> None:
        event = {**body, "timestamp": ari_time(), "application": conn.name, "asterisk_id": ASTERISK_ID}
        if self._on_traffic is not None:
            self._on_traffic("event", event)
        self.events_sent += 1
        conn.outbox.put_nowait(json.dumps(event))

    async def close(self) -> None:
        for conn in list(self._conns.values()):
            conn.outbox.put_nowait(None)
            await conn.ws.close()
        self._conns.clear()
