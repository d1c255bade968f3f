"""A lean HTTP/1.1 client for ARI's REST requests: kept-alive connections to one server.

Why not aiohttp's client, which the application keeps for downloads (recordings): a whole call
makes ten ARI requests, and aiohttp spends about 0.1 ms of CPU on each beyond the socket work
(request and response objects, header multidicts, URL and cookie handling, tracing hooks, the
timeout machinery), a tenth of the application's CPU per call (issue 15, bench/ivr.py). ARI
needs little of that: one host, basic auth, small JSON bodies with a Content-Length.

Why a protocol rather than asyncio's streams: profiling the application on a real Asterisk
showed the streams' costs per request (a ``readline()`` awaited per header line, the writer's
wrappers, an ``asyncio.timeout()`` each) as the largest single cost of a call after the socket
work itself (issue 15). Here an answer is parsed from what arrived in one pass once its head is
whole (``CRLF CRLF``), and each request has one timer (``loop.call_at``) that fails its waiting
future and closes the connection.

What it does: a pool of at most ``limit`` connections, each carrying one request at a time (no
pipelining); a connection idle longer than ``idle_s`` is closed rather than reused (Asterisk
closes idle ones after 15 s, http.conf ``session_keep_alive``); a request sent on a reused
connection that the server had closed meanwhile (no byte of an answer) is sent once more on a
new one, as the server never read it. Anything else that goes wrong closes the connection (its
state is unknown) and raises :class:`HttpFailure`; the time limit covers the wait for a free
slot and a connection too, and raises :class:`TimeoutError`. A caller cancelled mid-answer
closes that connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass

import yarl

#: Response header lines longer than this are refused (asyncio's default line limit).
LINE_LIMIT = 64 * 1024

_HTTP1 = b"HTTP/1."
# What is still to come of an answer once its head is read.
_NO_BODY, _LENGTH, _CHUNKED, _TO_CLOSE = range(4)


class HttpFailure(Exception):
    """No usable answer: the connection failed, closed, or the answer was not HTTP."""


class _NoAnswer(HttpFailure):
    """The connection closed before the first byte of an answer."""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes


class KeptAliveClient:
    """Requests to the server of ``base_url`` over a pool of kept-alive connections."""

    #: At most this many requests at once: Asterisk's HTTP server takes 100 sessions in all
    #: (http.conf ``sessionlimit``), the events WebSocket and other clients included.
    LIMIT = 64

    def __init__(self, base_url: str, *, limit: int = LIMIT, idle_s: float = 10.0) -> None:
        url = yarl.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"an http:// or https:// URL with a host, got {base_url!r}")
        self._host, self._port = url.host, url.explicit_port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        host = f"[{url.host}]" if ":" in url.host else url.host
        self._host_line = f"Host: {host}:{self._port}\r\n"
        self._idle: deque[_Connection] = deque()
        self._idle_s = idle_s
        # The slots: a counter, and the requests waiting for one (a slot passes from the
        # request that ends straight to the first of them, so the counter stays as it was).
        self._limit = limit
        self._busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.opened = 0

    async def request(self, method: str, target: str, *, headers: str = "", body: bytes = b"",
                      content_type: str | None = None, timeout_s: float) -> Answer:
        """Send ``method target`` (path and query, already encoded) with ``headers`` (complete
        lines, each ending in CRLF) and ``body``; the answer, whatever its status."""
        typed = f"Content-Type: {content_type}\r\n" if content_type else ""
        message = (f"{method} {target} HTTP/1.1\r\n{self._host_line}{headers}{typed}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + timeout_s
        if self._busy < self._limit and not self._waiters:
            self._busy += 1
        else:
            await self._wait_for_slot(loop, deadline)
        try:
            conn = self._take(now)
            reused = conn is not None
            while True:
                if conn is None:
                    conn = await self._open(loop, deadline)
                try:
                    answer = await conn.send(message, method == "HEAD", deadline)
                except _NoAnswer:
                    conn.close()
                    if not reused:
                        raise HttpFailure("the server closed the connection without an answer") from None
                    # A kept-alive connection the server had closed: it never read the request.
                    conn, reused = None, False
                    continue
                except BaseException:
                    conn.close()  # failed, timed out or cancelled mid-answer: its state is unknown
                    raise
                if conn.keep:
                    conn.used_at = now  # when this request began: the idle time errs long, safely
                    self._idle.append(conn)
                else:
                    conn.close()
                return answer
        finally:
            self._release()

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _time_out, waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # handed a slot just as its request gave up: pass it on
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise
        finally:
            timer.cancel()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1

    def _take(self, now: float) -> _Connection | None:
        """The most recently used idle connection still worth trying (the others are closed)."""
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.used_at <= self._idle_s:
                return conn
            conn.close()
        return None

    async def _open(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        conn = _Connection(loop)
        try:
            # Once per connection, not per request: asyncio's own timeout is cheap enough here.
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(lambda: conn, self._host, self._port, ssl=self._ssl)
        except TimeoutError:
            conn.close()
            raise
        except OSError as exc:
            raise HttpFailure(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        self.opened += 1
        return conn

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.close()
            await conn.gone


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    """One connection: sends a request, and parses its answer from the bytes as they come."""

    __slots__ = ("_loop", "_transport", "_waiter", "_timer", "_no_body", "_buf", "_scanned",
                 "_body_at", "_mode", "_length", "_keep", "_status", "_chunks", "_chunk_at",
                 "closed", "keep", "used_at", "gone")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._no_body = False
        self._buf: bytes | bytearray = b""
        self._scanned = 0  # where to go on looking for the head's end
        self._body_at = -1  # where the body starts; -1 while the head is incomplete
        self._mode = _NO_BODY
        self._length = 0
        self._keep = False
        self._status = 0
        self._chunks: list[bytes] = []
        self._chunk_at = 0
        self.closed = False
        #: Whether the last answer left the connection fit for the next request.
        self.keep = False
        self.used_at = 0.0
        #: Done once the transport has gone (what ``close()`` waits for).
        self.gone: asyncio.Future[None] = loop.create_future()

    def send(self, message: bytes, no_body: bool, deadline: float) -> asyncio.Future[Answer]:
        """Write ``message``; its answer, failed with TimeoutError if it is not whole by
        ``deadline`` (the connection is closed then)."""
        assert self._transport is not None and self._waiter is None
        self._waiter = waiter = self._loop.create_future()
        self._no_body = no_body
        self._timer = self._loop.call_at(deadline, self._time_out)
        try:
            self._transport.write(message)
        except (OSError, RuntimeError) as exc:
            self._fail(HttpFailure(f"{type(exc).__name__}: {exc}"))
        return waiter

    def close(self) -> None:
        self.closed = True
        self._fail(HttpFailure("the connection was closed"))

    def _time_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError())

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, as create_connection gives; uvloop's (the application's loop)
        # is no subclass of asyncio.Transport, so no isinstance check here.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self.close()  # bytes nobody asked for: whatever comes next cannot be trusted
            return
        buf = self._buf
        if not buf:
            self._buf = data  # most answers come in one piece: no copy
        else:
            if isinstance(buf, bytes):
                buf = bytearray(buf)
            buf += data
            self._buf = buf
        try:
            self._advance()
        except ValueError as exc:
            self._fail(HttpFailure(f"a bad answer: {exc}"))

    def eof_received(self) -> bool:
        self._ended()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()
        self._transport = None
        if not self.gone.done():
            self.gone.set_result(None)

    # --- the answer ---------------------------------------------------------------

    def _advance(self) -> None:
        buf = self._buf
        body_at = self._body_at
        if body_at < 0:
            end = buf.find(b"\r\n\r\n", self._scanned)
            if end < 0:
                _check_partial_head(buf)
                self._scanned = max(0, len(buf) - 3)
                return
            self._read_head(bytes(buf[:end]) if isinstance(buf, bytearray) else buf[:end])
            self._body_at = body_at = end + 4
        mode = self._mode
        if mode == _LENGTH:
            end = body_at + self._length
            if len(buf) >= end:
                self._finish(bytes(buf[body_at:end]), len(buf) == end)
        elif mode == _NO_BODY:
            self._finish(b"", len(buf) == body_at)
        elif mode == _CHUNKED:
            self._advance_chunks()
        # _TO_CLOSE: the body is whole when the connection ends (_ended)

    def _read_head(self, head: bytes) -> None:
        first = head.find(b"\r\n")
        status_line = head if first < 0 else head[:first]
        version, _, rest = status_line.partition(b" ")
        if not version.startswith(_HTTP1) or len(rest) < 3 or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        if len(head) > LINE_LIMIT and max(map(len, head.split(b"\r\n"))) > LINE_LIMIT:
            raise ValueError(f"a header line over {LINE_LIMIT} bytes")
        self._status = status = int(rest[:3])
        # One lowered copy of the header lines, searched for the three that matter.
        fields = head[first:].lower() if first >= 0 else b""
        connection = _field(fields, b"\r\nconnection:") or b""
        self._keep = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
        if self._no_body or status in (204, 304) or 100 <= status < 200:
            self._mode = _NO_BODY
        elif b"chunked" in (_field(fields, b"\r\ntransfer-encoding:") or b""):
            self._mode, self._chunks, self._chunk_at = _CHUNKED, [], len(head) + 4
        elif (length := _field(fields, b"\r\ncontent-length:")) is None:
            self._mode, self._keep = _TO_CLOSE, False  # the body ends with the connection
        else:
            self._mode, self._length = _LENGTH, int(length)
            if self._length < 0:
                raise ValueError(f"Content-Length {self._length}")

    def _advance_chunks(self) -> None:
        buf, at = self._buf, self._chunk_at
        while (eol := buf.find(b"\r\n", at)) >= 0:
            size = int(buf[at:eol].split(b";", 1)[0], 16)
            if size < 0:
                raise ValueError(f"a chunk of {size} bytes")
            start = eol + 2
            if size == 0:
                if len(buf) < start + 2:
                    break
                if buf[start:start + 2] == b"\r\n":
                    end = start + 2
                elif (trailers := buf.find(b"\r\n\r\n", start)) >= 0:
                    end = trailers + 4
                else:
                    _check_line(buf, start)
                    break
                self._finish(b"".join(self._chunks), len(buf) == end)
                return
            end = start + size
            if len(buf) < end + 2:
                break
            if buf[end:end + 2] != b"\r\n":
                raise ValueError("a chunk not ending in CRLF")
            self._chunks.append(bytes(buf[start:end]))
            at = end + 2
        else:
            _check_line(buf, at)
        self._chunk_at = at

    def _finish(self, body: bytes, nothing_after: bool) -> None:
        # Bytes after the answer were never asked for: the connection is not reused then.
        self.keep = self._keep and nothing_after
        waiter = self._waiter
        self._waiter = None
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(self._status, body))

    def _ended(self) -> None:
        """The server closed its side (or the connection is lost)."""
        self.closed = True
        if self._waiter is None:
            return
        if self._body_at >= 0 and self._mode == _TO_CLOSE:
            self._finish(bytes(self._buf[self._body_at:]), True)
        elif not self._buf:
            self._fail(_NoAnswer("closed before an answer"))
        else:
            self._fail(HttpFailure("the connection closed mid-answer"))

    def _fail(self, exc: BaseException) -> None:
        """End the request (if one is waiting) with ``exc`` and close the connection."""
        waiter = self._waiter
        self._waiter = None
        self._reset()
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _reset(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buf = b""
        self._scanned = 0
        self._body_at = -1


def _field(fields: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lowered, with its CRLF before and colon after) in the
    lowered header lines ``fields`` (each after a CRLF); None if it is not there."""
    at = fields.find(name)
    if at < 0:
        return None
    at += len(name)
    end = fields.find(b"\r\n", at)
    return (fields[at:end] if end >= 0 else fields[at:]).strip()


def _check_partial_head(buf: bytes | bytearray) -> None:
    """Refuse what can no longer become an answer's head (rather than wait for its end)."""
    start = buf[:len(_HTTP1)]
    if start != _HTTP1[:len(start)]:
        raise ValueError(f"not an HTTP answer: {bytes(buf[:80])!r}")
    if len(buf) > LINE_LIMIT:
        _check_line(buf, buf.rfind(b"\n") + 1)


def _check_line(buf: bytes | bytearray, start: int) -> None:
    """Refuse a line begun at ``start`` that is already over the limit with no end yet."""
    if len(buf) - start > LINE_LIMIT:
        raise ValueError(f"a line over {LINE_LIMIT} bytes")
