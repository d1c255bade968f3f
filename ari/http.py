"""A lean HTTP/1.1 client for ARI's REST requests: kept-alive connections to one server.

Why not aiohttp's client, which the application keeps for downloads (recordings): a whole call
makes ten ARI requests, and aiohttp spends about 0.1 ms of CPU on each beyond the socket work
(request and response objects, header multidicts, URL and cookie handling, tracing hooks, the
timeout machinery), a tenth of the application's CPU per call (issue 15, bench/ivr.py). ARI
needs little of that: one host, basic auth, small JSON bodies with a Content-Length.

What it does: a pool of at most ``limit`` connections, each carrying one request at a time (no
pipelining); a connection idle longer than ``idle_s`` is closed rather than reused (Asterisk
closes idle ones after 15 s, http.conf ``session_keep_alive``); a request sent on a reused
connection that the server had closed meanwhile (no byte of an answer) is sent once more on a
new one, as the server never read it. Anything else that goes wrong closes the connection (its
state is unknown) and raises :class:`HttpFailure`; the time limit covers the wait for a
connection too.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass

import yarl

#: Response header lines longer than this are refused (asyncio's default line limit).
LINE_LIMIT = 64 * 1024


class HttpFailure(Exception):
    """No usable answer: the connection failed, closed, or the answer was not HTTP."""


class _NoAnswer(HttpFailure):
    """The connection closed before the first byte of an answer."""


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used_at: float

    def close(self) -> None:
        self.writer.close()


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
        self._slots = asyncio.Semaphore(limit)
        self._idle_s = idle_s
        self.opened = 0

    async def request(self, method: str, target: str, *, headers: str = "", body: bytes = b"",
                      content_type: str | None = None, timeout_s: float) -> Answer:
        """Send ``method target`` (path and query, already encoded) with ``headers`` (complete
        lines, each ending in CRLF) and ``body``; the answer, whatever its status."""
        typed = f"Content-Type: {content_type}\r\n" if content_type else ""
        head = (f"{method} {target} HTTP/1.1\r\n{self._host_line}{headers}{typed}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        async with asyncio.timeout(timeout_s), self._slots:
            try:
                return await self._exchange(head + body, method, reuse=True)
            except _NoAnswer:
                # A kept-alive connection the server had closed: it never read the request.
                return await self._exchange(head + body, method, reuse=False)

    async def _exchange(self, message: bytes, method: str, *, reuse: bool) -> Answer:
        conn = self._take() if reuse else None
        reused = conn is not None
        if conn is None:
            conn = await self._open()
        try:
            conn.writer.write(message)
            answer, keep = await _read_answer(conn.reader, method)
        except _NoAnswer:
            conn.close()
            if reused:
                raise
            raise HttpFailure("the server closed the connection without an answer") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            conn.close()
            raise HttpFailure(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            conn.close()  # cancelled or timed out mid-answer: the connection's state is unknown
            raise
        if keep:
            conn.used_at = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return answer

    def _take(self) -> _Connection | None:
        """The most recently used idle connection still worth trying (the others are closed)."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.used_at <= self._idle_s and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._ssl,
                                                           limit=LINE_LIMIT)
        except OSError as exc:
            raise HttpFailure(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        self.opened += 1
        return _Connection(reader, writer, time.monotonic())

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.close()
            try:
                await conn.writer.wait_closed()
            except OSError:
                pass


async def _read_answer(reader: asyncio.StreamReader, method: str) -> tuple[Answer, bool]:
    """One answer; and whether the connection may carry the next request."""
    status_line = await reader.readline()
    if not status_line:
        raise _NoAnswer("closed before an answer")
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(rest) < 3 or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    status = int(rest[:3])
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get(b"connection", b"").lower()
    keep = connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Answer(status, b""), keep
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return Answer(status, await _read_chunks(reader)), keep
    length = headers.get(b"content-length")
    if length is None:
        return Answer(status, await reader.read()), False  # the body ends with the connection
    return Answer(status, await reader.readexactly(int(length))), keep


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the CRLF after each chunk
