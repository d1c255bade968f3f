"""A minimal WebSocket client (RFC 6455) for reading ARI's events, cheap per message.

ARI's events arrive one at a time, about a kilobyte each. A general client (the ``websockets``
library) moves each through a parser, a frame assembler and a queue to a reader task it wakes:
several steps and a task switch per event, some 7-8 % of the application's CPU. Here the frames
are parsed straight from ``data_received`` and each complete message is handed to a plain
callback, synchronously: no queue, no task to wake.

What it does: the opening handshake (a checked ``Sec-WebSocket-Accept``; any status but 101 is
:class:`InvalidStatus` with the status), no extensions and no subprotocol (Asterisk agrees to
none), unmasked server frames, text and binary messages, fragmented or not, with 7, 16 and
64-bit lengths; a message over ``max_size`` closes with 1009; pings answered with masked pongs,
a close frame answered and the connection ended; a keepalive ping every ``ping_interval`` and
the connection failed when its pong is ``ping_timeout`` late. It sends no messages of its own:
ARI's events socket is one-way.

Messages that arrive before :meth:`WebSocket.release` are held in order (the caller
resynchronizes first, then takes them); control frames are answered meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

#: The GUID of RFC 6455 section 1.3, appended to the key to compute the accept value.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The longest response head (status line and headers) accepted in the handshake.
_MAX_HEAD = 65536
#: Held messages (before release) above this many bytes pause reading: TCP holds the rest.
_MAX_HELD = 2**24

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

NORMAL_CLOSURE, GOING_AWAY, PROTOCOL_ERROR, NO_STATUS, ABNORMAL = 1000, 1001, 1002, 1005, 1006
INVALID_DATA, INTERNAL_ERROR, MESSAGE_TOO_BIG = 1007, 1011, 1009
#: Closes that are an ordinary end, not a failure (as the ``websockets`` library counted them).
_OK_CODES = (NORMAL_CLOSURE, GOING_AWAY, NO_STATUS)

_CODE_NAMES = {1000: "OK", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
               1005: "no status received", 1006: "connection closed abnormally", 1007: "invalid data",
               1008: "policy violation", 1009: "message too big", 1010: "extension required",
               1011: "internal error", 1012: "service restart", 1013: "try again later", 1014: "bad gateway"}

OnMessage = Callable[[bytes], None]


class WebSocketError(Exception):
    """Anything wrong with a WebSocket connection other than the network's OSError."""


class InvalidHandshake(WebSocketError):
    """The server's answer to the opening handshake is not a valid WebSocket upgrade."""


class InvalidStatus(InvalidHandshake):
    """The server answered the handshake with an HTTP status other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")
        self.status = status


class ConnectionClosed(WebSocketError):
    """The connection ended; ``code`` is the close code received (1006: none), ``reason`` its text."""

    def __init__(self, code: int, reason: str = "", *, sent: bool = False) -> None:
        who = "sent" if sent else "received"
        name = _CODE_NAMES.get(code, "unknown")
        if code == ABNORMAL:
            text = "no close frame received or sent"
        else:
            text = f"{who} {code} ({name})" + (f" {reason}" if reason else "")
        super().__init__(text)
        self.code = code
        self.reason = reason


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XORed with the 4-byte ``key`` repeated (what a client does to every frame it sends)."""
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


async def connect(
    url: str,
    headers: Mapping[str, str],
    on_message: OnMessage,
    *,
    max_size: int = 2**22,
    ping_interval: float | None = 20.0,
    ping_timeout: float = 20.0,
    open_timeout: float = 10.0,
    close_timeout: float = 10.0,
) -> WebSocket:
    """Open a ``ws://`` or ``wss://`` connection; ``on_message`` gets each message's bytes (text
    is checked to be UTF-8, not decoded) once :meth:`WebSocket.release` is called.

    Raises OSError (cannot connect), TimeoutError (no answer within ``open_timeout``),
    :class:`InvalidStatus` or :class:`InvalidHandshake`."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a WebSocket URL: {url}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    host = parts.netloc.rpartition("@")[2]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    protocol = WebSocket(on_message, accept_value(key), max_size=max_size, ping_interval=ping_interval,
                         ping_timeout=ping_timeout, close_timeout=close_timeout)
    async with asyncio.timeout(open_timeout):
        transport, _ = await loop.create_connection(
            lambda: protocol, parts.hostname, port,
            ssl=ssl.create_default_context() if secure else None)
        try:
            transport.write(request)
            await protocol.opened
        except BaseException:
            transport.abort()
            raise
    return protocol


class WebSocket(asyncio.Protocol):
    """One client connection: the handshake's answer, then frames, all parsed in ``data_received``."""

    def __init__(self, on_message: OnMessage, accept: str, *, max_size: int, ping_interval: float | None,
                 ping_timeout: float, close_timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._on_message = on_message
        self._accept = accept
        self._max_size = max_size
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._transport: asyncio.Transport | None = None
        #: Resolved when the server accepted the upgrade (or failed with why not).
        self.opened: asyncio.Future[None] = loop.create_future()
        #: Resolved when the connection ended: None for an ordinary close, else why.
        self._ended: asyncio.Future[BaseException | None] = loop.create_future()
        self._handshaking = True
        self._buffer = bytearray()
        #: How many buffered bytes the next frame needs before parsing is worth another try.
        self._need = 0
        self._fragments: list[bytes] | None = None
        self._fragments_size = 0
        self._fragments_text = False
        self._held: list[bytes] | None = []  # None once released
        self._held_size = 0
        self._paused = False
        self._closing = False  # a close frame was sent: no other frame may follow
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    # --- the caller's side ----------------------------------------------------------------

    def release(self) -> None:
        """Hand the held messages to ``on_message`` in order, then every message as it comes."""
        held, self._held = self._held, None
        if held is None:
            return
        try:
            for message in held:
                self._on_message(message)
        except Exception as exc:  # noqa: BLE001 - the caller's failure ends the connection and is re-raised by wait_closed
            self._fail(INTERNAL_ERROR, exc)
            return
        if self._paused and self._transport is not None and not self._ended.done():
            self._paused = False
            self._transport.resume_reading()

    async def wait_closed(self) -> None:
        """Until the connection ends: returns if it ended with an ordinary close (1000, 1001, or no
        code), raises ConnectionClosed (or the error that ended it) otherwise."""
        problem = await asyncio.shield(self._ended)
        if problem is not None:
            raise problem

    async def close(self, code: int = NORMAL_CLOSURE) -> None:
        """The closing handshake: send a close frame, wait (at most ``close_timeout``) for the
        server's, then end the TCP connection."""
        self.close_soon(code, wait_for_answer=True)
        try:
            async with asyncio.timeout(self._close_timeout):
                await asyncio.shield(self._ended)
        except TimeoutError:
            self._end(ConnectionClosed(code, sent=True))

    def close_soon(self, code: int = NORMAL_CLOSURE, *, wait_for_answer: bool = False) -> None:
        """Send a close frame and end the TCP connection without waiting (``wait_for_answer``: let
        the server answer first)."""
        if self._ended.done() or self._transport is None:
            return
        self._send_close(code)
        if not wait_for_answer:
            self._end(None if code in _OK_CODES else ConnectionClosed(code, sent=True))

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses: no isinstance).
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._cancel_timers()
        if self._handshaking and not self.opened.done():
            self.opened.set_exception(exc or InvalidHandshake("connection closed during the handshake"))
        if not self._ended.done():
            self._ended.set_result(ConnectionClosed(ABNORMAL))

    def data_received(self, data: bytes) -> None:
        if self._ended.done():  # what a closing transport still hands on is no longer read
            return
        if self._handshaking:
            data = self._handshake(data)
            if not data:
                return
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
        try:
            self._frames(data)
        except _Failure as failure:
            self._fail(failure.code, ConnectionClosed(failure.code, failure.reason, sent=True))
        except Exception as exc:  # noqa: BLE001 - on_message's failure ends the connection and is re-raised by wait_closed
            self._fail(INTERNAL_ERROR, exc)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost says no close frame came

    # --- the handshake --------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        """Collect the response head; check it; return the bytes after it (frames already)."""
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                self._refuse(InvalidHandshake("the handshake's response head is too long"))
            return b""
        head = bytes(self._buffer[:end]).decode("latin-1")
        rest = bytes(self._buffer[end + 4:])
        self._buffer.clear()
        self._handshaking = False
        try:
            self._check_head(head)
        except InvalidHandshake as exc:
            self._refuse(exc)
            return b""
        self.opened.set_result(None)
        self._schedule_ping()
        return rest

    def _check_head(self, head: str) -> None:
        status_line, *header_lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise InvalidHandshake(f"not an HTTP response: {status_line[:80]!r}")
        if int(code) != 101:
            raise InvalidStatus(int(code))
        fields: dict[str, list[str]] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise InvalidHandshake(f"malformed header line: {line[:80]!r}")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
        if [v.lower() for v in fields.get("upgrade", [])] != ["websocket"]:
            raise InvalidHandshake(f"Upgrade: {fields.get('upgrade')}")
        tokens = {t.strip().lower() for v in fields.get("connection", []) for t in v.split(",")}
        if "upgrade" not in tokens:
            raise InvalidHandshake(f"Connection: {fields.get('connection')}")
        if fields.get("sec-websocket-accept") != [self._accept]:
            raise InvalidHandshake(f"Sec-WebSocket-Accept: {fields.get('sec-websocket-accept')}, "
                                   f"expected {self._accept}")
        if "sec-websocket-extensions" in fields:  # none was offered: none may be used
            raise InvalidHandshake(f"Sec-WebSocket-Extensions: {fields['sec-websocket-extensions']}")
        if "sec-websocket-protocol" in fields:
            raise InvalidHandshake(f"Sec-WebSocket-Protocol: {fields['sec-websocket-protocol']}")

    def _refuse(self, exc: InvalidHandshake) -> None:
        self._handshaking = False
        if not self.opened.done():
            self.opened.set_exception(exc)
        if not self._ended.done():
            self._ended.set_result(exc)
        if self._transport is not None:
            self._transport.abort()

    # --- frames ---------------------------------------------------------------------------

    def _frames(self, data: bytes) -> None:
        """Parse every whole frame of ``data``; keep the tail of a partial one (the buffer is empty)."""
        pos = 0
        size = len(data)
        max_size = self._max_size
        need = 2
        while size - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length >= 126:  # the length follows, in 2 bytes (126) or 8 (127)
                start += 2 if length == 126 else 8
                if start > size:
                    need = start - pos
                    break
                length = int.from_bytes(data[pos + 2:start], "big")
                if length >> 63:
                    raise _Failure(PROTOCOL_ERROR, "a 64-bit length with its top bit set")
            if b1 & 0x80:
                raise _Failure(PROTOCOL_ERROR, "a masked frame from the server")
            if b0 & 0x70:
                raise _Failure(PROTOCOL_ERROR, "reserved bits set (no extension was agreed)")
            if length > max_size - self._fragments_size:  # known from the header: do not wait for the rest
                if not b0 & 0x08:
                    raise _Failure(MESSAGE_TOO_BIG, f"a message over {max_size} bytes")
                if length > 125:
                    raise _Failure(PROTOCOL_ERROR, "a long control frame")
            end = start + length
            if end > size:
                need = end - pos
                break
            payload = data[start:end]
            pos = end
            if b0 == 0x81 and self._fragments is None:  # the usual case: one event, one final text frame
                if not payload.isascii():
                    _check_utf8(payload)
                self._message(payload)
            else:
                self._frame(b0 & 0x80, b0 & 0x0F, payload)
            if self._ended.done():
                return
        if pos < size:
            self._buffer += memoryview(data)[pos:]
        self._need = need

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode >= _CLOSE:
            if not fin or len(payload) > 125:
                raise _Failure(PROTOCOL_ERROR, "a fragmented or long control frame")
            if opcode == _PING:
                if not self._closing:
                    self._send(_PONG, payload)
            elif opcode == _PONG:
                if payload == self._ping_payload:
                    self._ping_payload = None
            elif opcode == _CLOSE:
                self._closed_by_server(payload)
            else:
                raise _Failure(PROTOCOL_ERROR, f"unknown opcode {opcode}")
        elif opcode == _CONTINUATION:
            if self._fragments is None:
                raise _Failure(PROTOCOL_ERROR, "a continuation frame with no message to continue")
            self._fragments_size += len(payload)
            if self._fragments_size > self._max_size:
                raise _Failure(MESSAGE_TOO_BIG, f"over {self._max_size} bytes")
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments)
                text = self._fragments_text
                self._fragments = None
                self._fragments_size = 0
                if text and not message.isascii():
                    _check_utf8(message)
                self._message(message)
        elif opcode in (_TEXT, _BINARY):
            if self._fragments is not None:
                raise _Failure(PROTOCOL_ERROR, "a new message before the last one's end")
            if fin:
                if opcode == _TEXT and not payload.isascii():
                    _check_utf8(payload)
                self._message(payload)
            else:
                self._fragments = [payload]
                self._fragments_size = len(payload)
                self._fragments_text = opcode == _TEXT
        else:
            raise _Failure(PROTOCOL_ERROR, f"unknown opcode {opcode}")

    def _message(self, message: bytes) -> None:
        held = self._held
        if held is None:
            self._on_message(message)
            return
        held.append(message)
        self._held_size += len(message)
        if self._held_size > _MAX_HELD and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _closed_by_server(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise _Failure(PROTOCOL_ERROR, "a one-byte close frame")
        code = int.from_bytes(payload[:2], "big") if payload else NO_STATUS
        try:
            reason = payload[2:].decode()
        except UnicodeDecodeError:
            raise _Failure(INVALID_DATA, "a close reason that is not UTF-8") from None
        if payload and not (3000 <= code < 5000 or code in _CODE_NAMES and code not in (NO_STATUS, ABNORMAL)):
            raise _Failure(PROTOCOL_ERROR, f"close code {code}")
        if not self._closing:  # answer with the same code (none if it gave none)
            self._send_close(code if payload else None)
        self._end(None if code in _OK_CODES else ConnectionClosed(code, reason))

    # --- sending, failing, ending -----------------------------------------------------------

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None:
            self._transport.write(frame(opcode, payload, os.urandom(4)))

    def _send_close(self, code: int | None) -> None:
        if not self._closing:
            self._closing = True
            self._send(_CLOSE, b"" if code is None else code.to_bytes(2, "big"))

    def _fail(self, code: int, problem: BaseException) -> None:
        """Close with ``code`` at once: the connection is unusable (protocol error, too big, dead)."""
        self._send_close(code)
        self._end(problem)

    def _end(self, problem: BaseException | None) -> None:
        """The connection is over for the caller: say why, and end TCP (aborted if it lingers)."""
        self._cancel_timers()
        if not self._ended.done():
            self._ended.set_result(problem)
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.close()
            self._abort_timer = self._loop.call_later(self._close_timeout, transport.abort)

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._abort_timer is not None and self._transport is None:
            self._abort_timer.cancel()
            self._abort_timer = None

    # --- keepalive ------------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        if self._ping_interval is not None:
            self._timer = self._loop.call_later(self._ping_interval, self._ping)

    def _ping(self) -> None:
        """Every ``ping_interval``: the last ping's pong must have come; send the next ping."""
        if self._ended.done():
            return
        self._ping_payload = os.urandom(4)
        self._ping_sent_at = self._loop.time()
        self._send(_PING, self._ping_payload)
        self._timer = self._loop.call_later(self._ping_timeout, self._pong_due)

    def _pong_due(self) -> None:
        if self._ended.done():
            return
        if self._ping_payload is not None:
            self._fail(INTERNAL_ERROR, ConnectionClosed(INTERNAL_ERROR, "keepalive ping timeout", sent=True))
            return
        assert self._ping_interval is not None
        next_at = self._ping_sent_at + self._ping_interval
        self._timer = self._loop.call_at(max(next_at, self._loop.time()), self._ping)


class _Failure(Exception):
    """A frame the protocol forbids: the connection is failed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _check_utf8(payload: bytes) -> None:
    try:
        payload.decode()
    except UnicodeDecodeError:
        raise _Failure(INVALID_DATA, "a text message that is not UTF-8") from None
