"""Our WebSocket client reads what a server may send (RFC 6455), however TCP cuts it: frames of every
length, fragmented messages, pings and closes in between; and it refuses what it must refuse."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from ari.websocket import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocket,
    accept_value,
    mask,
)

KEY = base64.b64encode(b"0123456789abcdef").decode()


class Wire(asyncio.Transport):
    """The client's side of TCP, as the protocol sees it: what it wrote, whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def sent(self) -> list[tuple[int, bytes]]:
        """The client's frames: (opcode, unmasked payload); each must be masked and final."""
        frames, data, pos = [], bytes(self.written), 0
        while pos < len(data):
            b0, b1 = data[pos], data[pos + 1]
            assert b0 & 0x80 and b1 & 0x80, "a client frame is final and masked"
            length, pos = b1 & 0x7F, pos + 2
            assert length < 126
            key, pos = data[pos:pos + 4], pos + 4
            frames.append((b0 & 0x0F, mask(data[pos:pos + length], key)))
            pos += length
        return frames


def response(status: str = "101 Switching Protocols", accept: str | None = None, extra: str = "") -> bytes:
    accept = accept_value(KEY) if accept is None else accept
    return (f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n").encode()


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    n = len(payload)
    b0 = bytes(((0x80 if fin else 0) | opcode,))
    if n < 126:
        return b0 + bytes((n,)) + payload
    if n < 65536:
        return b0 + bytes((126,)) + n.to_bytes(2, "big") + payload
    return b0 + bytes((127,)) + n.to_bytes(8, "big") + payload


def text(payload: bytes, *, fin: bool = True) -> bytes:
    return server_frame(0x1, payload, fin=fin)


def close(code: int, reason: bytes = b"") -> bytes:
    return server_frame(0x8, code.to_bytes(2, "big") + reason)


class Client:
    def __init__(self, *, released: bool = True, max_size: int = 2**22, ping_interval: float | None = None,
                 ping_timeout: float = 20.0) -> None:
        self.messages: list[bytes] = []
        self.ws = WebSocket(self.messages.append, accept_value(KEY), max_size=max_size, ping_interval=ping_interval,
                            ping_timeout=ping_timeout, close_timeout=1.0)
        self.wire = Wire()
        self.ws.connection_made(self.wire)
        if released:
            self.ws.release()

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.ws.data_received(chunk)

    async def ended(self) -> BaseException | None:
        try:
            await asyncio.wait_for(self.ws.wait_closed(), 1)
        except ConnectionClosed as exc:
            return exc
        return None


BIG = bytes(range(256)) * 300  # 76800 bytes: a 64-bit length
MEDIUM = b"x" * 300  # a 16-bit length
STREAM_MESSAGES = [b'{"type":"a"}', MEDIUM, "é€😀".encode(), b"part1part2part3", b"\x00\xffbinary"]


def a_stream(*, big: bool = False) -> bytes:
    """Every kind of frame, a ping inside a fragmented message, a close at the end."""
    return b"".join([
        response(),
        text(b'{"type":"a"}'),
        text(MEDIUM),
        text("é€😀".encode()),
        text(b"part1", fin=False), server_frame(0x9, b"ping!"), server_frame(0x0, b"part2", fin=False),
        server_frame(0x0, b"part3"),
        server_frame(0x2, b"\x00\xffbinary"),
        *([server_frame(0x2, BIG)] if big else []),
        close(1000),
    ])


async def test_frames_are_read_however_tcp_splits_them() -> None:
    stream = a_stream()
    for cut in range(1, len(stream)):
        client = Client()
        client.feed(stream[:cut], stream[cut:])
        assert client.messages == STREAM_MESSAGES, cut
        assert client.wire.sent() == [(0xA, b"ping!"), (0x8, (1000).to_bytes(2, "big"))], cut
        assert await client.ended() is None
        assert client.wire.closed


async def test_frames_are_read_a_byte_at_a_time_and_all_at_once() -> None:
    stream = a_stream(big=True)
    one_by_one, at_once = Client(), Client()
    one_by_one.feed(*(stream[i:i + 1] for i in range(len(stream))))
    at_once.feed(stream)
    for client in (one_by_one, at_once):
        assert client.messages == [*STREAM_MESSAGES, BIG]
        assert await client.ended() is None


async def test_messages_before_release_are_held_in_order_and_pings_answered_meanwhile() -> None:
    client = Client(released=False)
    client.feed(response() + text(b"1") + server_frame(0x9, b"") + text(b"2"))
    assert client.messages == [] and client.wire.sent() == [(0xA, b"")]
    client.ws.release()
    client.feed(text(b"3"))
    assert client.messages == [b"1", b"2", b"3"]


async def test_a_close_with_an_error_code_is_answered_and_ends_the_connection_with_it() -> None:
    client = Client()
    client.feed(response() + close(1011, b"bye") + text(b"after"))
    ended = await client.ended()
    assert isinstance(ended, ConnectionClosed) and (ended.code, ended.reason) == (1011, "bye")
    assert client.wire.sent() == [(0x8, (1011).to_bytes(2, "big"))] and client.wire.closed
    assert client.messages == []


async def test_the_connection_lost_without_a_close_frame_is_an_abnormal_close() -> None:
    client = Client()
    client.feed(response() + text(b"half")[:3])
    client.ws.connection_lost(None)
    ended = await client.ended()
    assert isinstance(ended, ConnectionClosed) and ended.code == 1006


@pytest.mark.parametrize("frames", [
    [text(b"x" * 1025)],  # one frame over the size
    [text(b"x" * 600, fin=False), server_frame(0x0, b"x" * 600)],  # fragments over it together
])
async def test_a_message_over_the_size_limit_closes_with_1009(frames: list[bytes]) -> None:
    client = Client(max_size=1024)
    client.feed(response(), *frames[:-1], frames[-1][:20])  # known from the header: no need for the rest
    ended = await client.ended()
    assert isinstance(ended, ConnectionClosed) and ended.code == 1009
    assert client.wire.sent() == [(0x8, (1009).to_bytes(2, "big"))] and client.wire.closed
    assert client.messages == []


async def test_a_message_of_exactly_the_size_limit_is_read() -> None:
    client = Client(max_size=1024)
    client.feed(response() + text(b"x" * 1024))
    assert client.messages == [b"x" * 1024]


@pytest.mark.parametrize(("frames", "code"), [
    ([bytes((0x81, 0x81)) + b"abcd" + b"x"], 1002),  # masked by the server
    ([bytes((0xC1, 0x01)) + b"x"], 1002),  # RSV1: compression nobody agreed to
    ([server_frame(0x0, b"x")], 1002),  # continuation of nothing
    ([text(b"a", fin=False), text(b"b")], 1002),  # a new message inside another
    ([server_frame(0x9, b"p" * 126)], 1002),  # a long control frame
    ([server_frame(0x9, b"p", fin=False)], 1002),  # a fragmented control frame
    ([server_frame(0x3, b"")], 1002),  # a reserved opcode
    ([text(b"\xff\xfe")], 1007),  # text that is not UTF-8
])
async def test_what_the_protocol_forbids_fails_the_connection(frames: list[bytes], code: int) -> None:
    client = Client()
    client.feed(response(), *frames)
    ended = await client.ended()
    assert isinstance(ended, ConnectionClosed) and ended.code == code
    assert client.wire.sent()[-1] == (0x8, code.to_bytes(2, "big")) and client.wire.closed


async def test_a_pong_keeps_the_connection_and_a_missing_one_ends_it() -> None:
    # The first ping at 0.05 s; the next when its pong is due (0.55 s), answered or not; the end
    # when that one's is (1.05 s): each look has a third of a second or more to spare on a busy host.
    client = Client(ping_interval=0.05, ping_timeout=0.5)
    client.feed(response())
    await asyncio.sleep(0.15)
    [(opcode, payload)] = client.wire.sent()
    assert opcode == 0x9 and len(payload) == 4
    client.feed(server_frame(0xA, payload))
    await asyncio.sleep(0.55)  # the pong came: a second ping, not an end
    assert [op for op, _ in client.wire.sent()] == [0x9, 0x9] and not client.wire.closed
    ended = await client.ended()  # that one gets no pong
    assert isinstance(ended, ConnectionClosed) and ended.code == 1011 and "keepalive" in str(ended)
    assert client.wire.sent()[-1] == (0x8, (1011).to_bytes(2, "big"))


@pytest.mark.parametrize(("head", "error"), [
    (response(accept=accept_value("another key")), InvalidHandshake),
    (response(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"), InvalidHandshake),
    (response(status="401 Unauthorized"), InvalidStatus),
    (response(status="503 Service Unavailable"), InvalidStatus),
    (b"SSH-2.0-OpenSSH\r\n\r\n", InvalidHandshake),
])
async def test_a_bad_handshake_answer_is_refused(head: bytes, error: type[Exception]) -> None:
    client = Client()
    client.feed(head[:10], head[10:])
    with pytest.raises(error) as refused:
        await client.ws.opened
    if isinstance(refused.value, InvalidStatus):
        assert refused.value.status == int(head[9:12])
    assert client.wire.closed and client.messages == []
