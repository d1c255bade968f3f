"""Stasis applications as Asterisk keeps them: registered at the first WebSocket, kept after.

An application is registered when a client first opens ``/ari/events?app=<name>`` and
stays registered (``GET /applications`` lists it) when the socket closes, with its event
subscriptions; it is only *active* while a socket is open. While it is inactive,
``Stasis(<name>)`` fails at once and events for it are dropped — Asterisk keeps no backlog
and replays nothing on reconnect (FIELD-NOTES). A second connection for the same name
replaces the first, which gets ``ApplicationReplaced``.

Subscriptions to endpoints (``endpoint:PJSIP`` for all, ``endpoint:PJSIP/1001`` for one) are
counted: each subscribe adds one, each unsubscribe takes one, and the application hears the
endpoint until the count is back to zero (docs/asterisk-behaviour.md).

Events are written to each socket by one writer task per connection, so they leave in
exactly the order the stand-in produced them.

An application's event filter (``PUT /applications/{name}/eventFilter``) is kept with it, as
Asterisk keeps it (res_stasis app.c): an event goes out when its type is in the allowed list (or
that list is empty) and not in the disallowed one.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.pbx_sim.state import ari_time

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
        #: Added to every event's ``timestamp``: a switch whose clock is off (ahead: > 0), or,
        #: below the offset it had, events that reach the application that much late (the
        #: overload tests).
        self.clock_offset_s = 0.0
        #: Every application ever registered, active or not, with its endpoint subscriptions
        #: (``PJSIP`` or ``PJSIP/1001`` -> how many times subscribed).
        self._endpoint_sources: dict[str, collections.Counter[str]] = {}
        self._on_traffic = on_traffic
        self.events_sent = 0
        #: Application -> (allowed types, disallowed types), as last set; empty sets: no filter.
        self._filters: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def set_filter(self, name: str, allowed: list[str] | None, disallowed: list[str] | None) -> None:
        """Asterisk's rules: a list not given is left as it was; no list at all clears both."""
        before = self._filters.get(name, (frozenset(), frozenset()))
        if allowed is None and disallowed is None:
            self._filters.pop(name, None)
            return
        self._filters[name] = (frozenset(allowed) if allowed is not None else before[0],
                               frozenset(disallowed) if disallowed is not None else before[1])

    def filter_of(self, name: str) -> tuple[list[str], list[str]]:
        allowed, disallowed = self._filters.get(name, (frozenset(), frozenset()))
        return sorted(allowed), sorted(disallowed)

    def allowed(self, name: str, event_type: str) -> bool:
        allowed, disallowed = self._filters.get(name, (frozenset(), frozenset()))
        return (not allowed or event_type in allowed) and event_type not in disallowed

    def names(self) -> list[str]:
        """Registered applications, active or not (Asterisk keeps them after the socket closes)."""
        return sorted(self._endpoint_sources)

    def known(self, name: str) -> bool:
        return name in self._endpoint_sources

    def connected(self, name: str) -> bool:
        return name in self._conns

    def register(self, conn: AppConnection) -> None:
        old = self._conns.get(conn.name)
        if old is not None:
            self._send(old, {"type": "ApplicationReplaced"})
            old.outbox.put_nowait(None)
        self._conns[conn.name] = conn
        self._endpoint_sources.setdefault(conn.name, collections.Counter())
        conn.writer = asyncio.get_running_loop().create_task(conn.write(), name=f"ari-ws:{conn.name}")
        log.info("application %r registered", conn.name)

    def unregister(self, conn: AppConnection) -> None:
        if self._conns.get(conn.name) is conn:
            del self._conns[conn.name]
            log.info("application %r unregistered (WebSocket closed)", conn.name)
        conn.outbox.put_nowait(None)

    def emit(self, app: str | None, event_type: str, copies: int = 1, **payload: Any) -> None:
        """Send an event to ``app`` if it is connected (otherwise it is lost, as in Asterisk),
        ``copies`` times: once per subscription through which Asterisk forwards it."""
        if app is None:
            return
        conn = self._conns.get(app)
        if conn is None:
            return
        self._send(conn, {"type": event_type, **payload}, copies)

    def endpoint_sources(self, app: str) -> collections.Counter[str]:
        """``app``'s endpoint subscriptions (``KeyError`` if it was never registered)."""
        return self._endpoint_sources[app]

    def endpoint_audience(self, endpoint: str) -> dict[str, int]:
        """Application -> how many of its subscriptions cover ``PJSIP/1001``: one for the
        endpoint itself, one for its whole technology. Asterisk forwards a channel's events
        through each of them, so an application subscribed both ways gets two copies."""
        technology = endpoint.partition("/")[0]
        audience = {}
        for app, sources in self._endpoint_sources.items():
            copies = (sources[endpoint] > 0) + (sources[technology] > 0)
            if copies:
                audience[app] = copies
        return audience

    def emit_endpoint(self, technology: str, resource: str, event_type: str, **payload: Any) -> None:
        """Send an endpoint's event to every application subscribed to it or to its technology."""
        for app, copies in self.endpoint_audience(f"{technology}/{resource}").items():
            self.emit(app, event_type, copies, **payload)

    def _send(self, conn: AppConnection, body: dict[str, Any], copies: int = 1) -> None:
        """Queue the event ``copies`` times: the copies Asterisk forwards through several
        subscriptions are one message, byte for byte (same timestamp)."""
        if self._filters and not self.allowed(conn.name, body["type"]):
            return
        stamp = ari_time(time.time() + self.clock_offset_s) if self.clock_offset_s else ari_time()
        event = {**body, "timestamp": stamp, "application": conn.name, "asterisk_id": ASTERISK_ID}
        text = json.dumps(event)
        for _ in range(copies):
            if self._on_traffic is not None:
                self._on_traffic("event", event)
            self.events_sent += 1
            conn.outbox.put_nowait(text)

    async def close(self) -> None:
        for conn in list(self._conns.values()):
            conn.outbox.put_nowait(None)
            await conn.ws.close()
        self._conns.clear()
