"""The ARI events WebSocket: one connection, reconnect with backoff, resync on connect.

ARI does not replay events: whatever happened while we were disconnected is lost.
So after every (re)connect the ``on_connect`` callback resynchronizes from
``GET /channels`` and ``GET /bridges`` before the new connection's events are handled
(they are held, in order, by the WebSocket meanwhile).

Each event is handled as its frame is parsed (:mod:`ari.websocket`), synchronously: copy check,
JSON, type filter, model, dispatch; no queue and no task woken between the socket and the call's
FIFO (the ``websockets`` library's path cost some 7-8 % of the application's CPU, issue 15).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from ari.dispatcher import Dispatcher
from ari.models import EventParseError, parse_event
from ari.websocket import InvalidStatus, WebSocket, WebSocketError, connect

log = logging.getLogger(__name__)

#: How many of the last events of a connection are remembered to drop a second copy (_read).
RECENT_EVENTS = 256


def events_url(base_url: str, app: str, *, subscribe_all: bool = False) -> str:
    """``http://pbx:8088`` -> ``ws://pbx:8088/ari/events?app=...``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/ari/events"
    query = urlencode({"app": app, "subscribeAll": "true" if subscribe_all else "false"})
    return urlunsplit((scheme, parts.netloc, path, query, ""))


class EventStream:
    def __init__(
        self,
        base_url: str,
        app: str,
        username: str,
        password: str,
        dispatcher: Dispatcher,
        on_connect: Callable[[], Awaitable[None]],
        *,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._url = events_url(base_url, app)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._dispatcher = dispatcher
        self._on_connect = on_connect
        self._initial = initial_backoff_s
        self._max = max_backoff_s
        self.connected = asyncio.Event()
        self.connections = 0
        #: When the last connection was lost: the last moment this process knew what was alive
        #: in Asterisk (calls found gone at the next resync ended after it, not at the resync).
        self.lost_at: datetime | None = None
        #: Second copies of events dropped (see _read).
        self.copies_dropped = 0
        #: The event types somebody handles (None: all). Asterisk sends many nobody does (a
        #: dialplan's steps and variables, every playback's start, a bridge's comings and
        #: goings: three events in four of a whole call); those are dropped as soon as their
        #: type is known, before a model is built and a call's FIFO woken for nothing.
        self.wanted: frozenset[str] | None = None
        self.unwanted_dropped = 0
        self._ws: WebSocket | None = None
        #: The last messages of this connection, insertion-ordered: the oldest goes first (_on_message).
        self._recent: dict[bytes, None] = {}

    async def run(self) -> None:
        """Connect, read, reconnect — until cancelled. Asterisk away (not started yet, restarting)
        is expected: a WARNING per try, saying where and when the next one is, never an end."""
        delay = self._initial
        where = self._url.split("?")[0]
        while True:
            was_connected = False
            ws: WebSocket | None = None
            try:
                # No permessage-deflate (ari.websocket offers no extension): Asterisk's WebSocket
                # server never agrees to it (res_http_websocket.c); a server that does (the
                # stand-in's aiohttp) would have us inflate a hundred events per call.
                ws = await connect(self._url, self._headers, self._on_message, max_size=2**22, ping_interval=20)
                self._ws = ws
                was_connected = True
                self.connections += 1
                self._recent.clear()
                log.info("ARI events connected (%s, connection %d)", where, self.connections)
                await self._on_connect()  # the events that arrive meanwhile are held, in order
                self.connected.set()
                delay = self._initial
                ws.release()
                await ws.wait_closed()
                problem = "closed by Asterisk"
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                status = exc.status
                if status in (401, 403):  # wrong user or password: nothing fixes itself
                    log.error("ARI refused the events WebSocket: HTTP %s (check [ari] username and password)",
                              status)
                    problem = ""
                else:  # 503 while Asterisk starts (its HTTP server is up before ARI): transient
                    problem = f"refused with HTTP {status}"
            except (OSError, WebSocketError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
            except Exception:
                log.exception("resynchronization after connect failed")
                problem = ""
            finally:
                if ws is not None:  # ended here (cancelled, resync failed): say goodbye, do not wait
                    ws.close_soon(1001)
                if self._ws is not None:
                    self.lost_at = datetime.now(UTC)
                self._ws = None
                self.connected.clear()
            # Full jitter: many app instances restarting together do not stampede Asterisk.
            wait = random.uniform(delay / 2, delay)
            if problem and was_connected:
                log.warning("ARI events connection lost (%s); reconnecting in %.1f s", problem, wait)
            elif problem:
                log.warning("cannot reach Asterisk's ARI at %s (%s); trying again in %.1f s (is Asterisk running? "
                            "check [ari] url)", where, problem, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._max)

    def _on_message(self, message: bytes) -> None:
        """One message of the events WebSocket, handled as soon as its frame is parsed."""
        # Asterisk forwards an event once per subscription that covers it: an application that
        # follows the PJSIP endpoints (the desktop's phones, endpoint:PJSIP) gets every event of
        # every SIP channel twice, byte for byte (the same message and timestamp), through the
        # channel and through its endpoint. A second ChannelDtmfReceived would be a second key
        # press (a "1" keyed in the menu would also book a callback in the queue), so an exact
        # copy of one of the last events is dropped. Events that differ in anything (each
        # carries its time, in ms, and the state it reports) are all kept.
        recent = self._recent
        if message in recent:
            self.copies_dropped += 1
            return
        recent[message] = None
        if len(recent) > RECENT_EVENTS:
            del recent[next(iter(recent))]
        try:
            data = orjson.loads(message)
            kind = data.get("type") if isinstance(data, dict) else None
            if self.wanted is not None and isinstance(kind, str) and kind not in self.wanted:
                self.unwanted_dropped += 1
                return
            event = parse_event(data)
        except (ValueError, EventParseError) as exc:
            log.error("dropping an event we cannot parse: %s", exc)
            return
        self._dispatcher.dispatch(event)

    async def disconnect(self) -> None:
        """Drop the current connection (tests and operators use it to force a resync)."""
        if self._ws is not None:
            await self._ws.close()
