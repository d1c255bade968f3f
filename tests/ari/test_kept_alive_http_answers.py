"""The ARI requests' HTTP client (ari/http.py) as a protocol: an answer read right however the
network cuts it into pieces, what is not an answer refused at once, and a request that times out
or is cancelled mid-answer leaving no connection and no slot behind.

The parsing tests feed the connection's protocol directly (no socket), so every cut of an answer
is tried deterministically; the others run a scripted server on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from ari.http import LINE_LIMIT, Answer, HttpFailure, KeptAliveClient, _Connection, _NoAnswer

BODY = b'{"id":"1733493600.1","name":"PJSIP/trunk-00000001","state":"Up","caller":{"number":"13800138000"}}'
ASTERISK = (b"HTTP/1.1 200 OK\r\nServer: Asterisk/22.10.1\r\nDate: Sun, 06 Dec 2026 14:00:00 GMT\r\n"
            b"Cache-Control: no-cache, no-store\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4;ext=1\r\n[1,2\r\nA\r\n,3,4,5,6,7\r\n1\r\n]\r\n0\r\nX-Trailer: t\r\n\r\n")


class Transport(asyncio.Transport):
    """What the connection writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def asking(method: str = "GET") -> tuple[_Connection, Transport, asyncio.Future[Answer]]:
    loop = asyncio.get_running_loop()
    conn, transport = _Connection(loop), Transport()
    conn.connection_made(transport)
    return conn, transport, conn.send(b"%s / HTTP/1.1\r\n\r\n" % method.encode(), method == "HEAD", loop.time() + 5)


def fed(pieces: list[bytes], method: str = "GET") -> tuple[_Connection, Transport, asyncio.Future[Answer]]:
    conn, transport, answer = asking(method)
    for piece in pieces:
        conn.data_received(piece)
    return conn, transport, answer


def cuts(message: bytes) -> list[list[bytes]]:
    """The message whole, cut in two at every byte boundary, and byte by byte."""
    return ([[message]] + [[message[:at], message[at:]] for at in range(1, len(message))]
            + [[message[at:at + 1] for at in range(len(message))]])


async def test_an_asterisk_answer_cut_anywhere_is_read_whole_and_keeps_the_connection() -> None:
    for pieces in cuts(ASTERISK):
        conn, transport, answer = fed(pieces)
        assert answer.done() and answer.result() == Answer(200, BODY), pieces
        assert conn.keep and not transport.closed


async def test_a_chunked_answer_cut_anywhere_is_read_whole_with_its_extensions_and_trailers() -> None:
    for pieces in cuts(CHUNKED):
        conn, _transport, answer = fed(pieces)
        assert answer.done() and answer.result() == Answer(200, b"[1,2,3,4,5,6,7]"), pieces
        assert conn.keep


async def test_nothing_is_answered_before_the_last_byte() -> None:
    for message in (ASTERISK, CHUNKED):
        _conn, _transport, answer = fed([message[:-1]])
        assert not answer.done()


async def test_the_connection_carries_answer_after_answer() -> None:
    conn, transport, first = fed([ASTERISK])
    assert first.result().body == BODY
    loop = asyncio.get_running_loop()
    second = conn.send(b"DELETE / HTTP/1.1\r\n\r\n", False, loop.time() + 5)
    conn.data_received(b"HTTP/1.1 204 No Content\r\nServer: Asterisk/22.10.1\r\n")
    conn.data_received(b"Content-Length: 0\r\n\r\n")
    assert second.result() == Answer(204, b"") and conn.keep
    assert transport.written == [b"GET / HTTP/1.1\r\n\r\n", b"DELETE / HTTP/1.1\r\n\r\n"]


async def test_a_body_to_the_end_of_the_connection_is_whole_when_it_ends_and_not_kept() -> None:
    conn, _transport, answer = fed([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1,", b"2]"])
    assert not answer.done()
    conn.eof_received()
    assert answer.result() == Answer(200, b"[1,2]") and not conn.keep and conn.closed


@pytest.mark.parametrize(("method", "head"), [
    ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\n\r\n"),
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
])
async def test_answers_without_a_body_end_with_their_head(method: str, head: bytes) -> None:
    conn, _transport, answer = fed([head], method)
    assert answer.result().body == b"" and conn.keep


@pytest.mark.parametrize(("head", "keep"), [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.1 200 OK\r\nCONNECTION: Close\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", False),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n{}", True),
    (ASTERISK + b"HTTP/1.1 200 OK\r\n", False),  # bytes nobody asked for: not reused
])
async def test_whether_the_connection_may_carry_the_next_request(head: bytes, keep: bool) -> None:
    conn, _transport, answer = fed([head])
    assert answer.done() and conn.keep is keep


@pytest.mark.parametrize("pieces", [
    [b"SSH-2.0-OpenSSH_9.6\r\n"],  # refused at once, not after a time-out waiting for a head
    [b"H", b"TTX"],
    [b"HTTP/1.1 OK\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"],
    [b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * LINE_LIMIT + b"\r\nContent-Length: 0\r\n\r\n"],
    [b"HTTP/1.1 200 OK\r\nX-Long: ", b"a" * (LINE_LIMIT + 1)],  # refused before its end comes
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1" * (LINE_LIMIT + 1)],
], ids=["not HTTP", "not HTTP cut", "no status", "bad length", "negative length", "bad chunk size",
        "chunk without CRLF", "long header line", "long line unfinished", "long chunk line"])
async def test_what_is_not_an_http_answer_fails_at_once_and_closes_the_connection(pieces: list[bytes]) -> None:
    conn, transport, answer = fed(pieces)
    with pytest.raises(HttpFailure):
        answer.result()
    assert transport.closed and conn.closed


async def test_a_header_line_just_under_the_limit_is_taken() -> None:
    head = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (LINE_LIMIT - 16) + b"\r\nContent-Length: 0\r\n\r\n"
    _conn, _transport, answer = fed([head[:LINE_LIMIT // 2], head[LINE_LIMIT // 2:]])
    assert answer.result().status == 200


async def test_a_close_before_any_byte_is_no_answer_and_after_some_a_failure() -> None:
    conn, _transport, answer = fed([])
    conn.connection_lost(ConnectionResetError())
    with pytest.raises(_NoAnswer):
        answer.result()
    conn, _transport, answer = fed([ASTERISK[:40]])
    conn.eof_received()
    with pytest.raises(HttpFailure) as failed:
        answer.result()
    assert not isinstance(failed.value, _NoAnswer)  # the server read it: never sent again


async def test_bytes_while_no_request_waits_close_the_connection() -> None:
    conn, transport, answer = fed([ASTERISK])
    assert answer.done()
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    assert transport.closed and conn.closed


# --- the client on a real socket ---------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """Runs ``handler`` for each connection, which reads requests with ``next_request``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
            # It stopped answering: the client is to close the connection.
            if not writer.is_closing() and await reader.read() == b"":
                self.closed_by_client += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def next_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        line = head.split(b"\r\n", 1)[0]
        self.requests.append(line)
        return line


@asynccontextmanager
async def serving(make: Callable[[Server], Handler], limit: int = KeptAliveClient.LIMIT,
                  ) -> AsyncIterator[tuple[Server, KeptAliveClient]]:
    server = Server(lambda r, w: make(server)(r, w))
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = KeptAliveClient(f"http://127.0.0.1:{port}", limit=limit)
    try:
        yield server, client
    finally:
        await client.close()
        listener.close()


def answering(stall_on: bytes = b"/stall", cut_on: bytes = b"/half") -> Callable[[Server], Handler]:
    """Answers each request in full, except: ``stall_on`` never answered, ``cut_on`` answered
    half (and then nothing)."""
    def make(server: Server) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while not reader.at_eof():
                line = await server.next_request(reader)
                if stall_on in line:
                    return
                writer.write(ASTERISK[:len(ASTERISK) // 2] if cut_on in line else ASTERISK)
                await writer.drain()
                if cut_on in line:
                    return
        return handler
    return make


async def test_a_reused_connection_closed_on_receiving_the_request_sends_it_once_more_and_only_once() -> None:
    def make(server: Server) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            number = server.connections
            await server.next_request(reader)
            if number < 3:
                writer.write(ASTERISK)  # the first two connections answer once, ...
                await server.next_request(reader)
            writer.close()  # ... and close on receiving the next request, the third at once
        return handler

    async with serving(make) as (server, client):
        assert (await client.request("GET", "/a", timeout_s=2)).body == BODY
        assert (await client.request("POST", "/b", timeout_s=2)).body == BODY
        assert server.requests == [b"GET /a HTTP/1.1", b"POST /b HTTP/1.1", b"POST /b HTTP/1.1"]
        with pytest.raises(HttpFailure, match="without an answer"):  # the new one failed too: no third try
            await client.request("POST", "/c", timeout_s=2)
        assert server.requests[3:] == [b"POST /c HTTP/1.1", b"POST /c HTTP/1.1"]


@pytest.mark.parametrize("target", ["/stall", "/half"])
async def test_a_timeout_mid_answer_closes_that_connection_and_the_next_request_is_fine(target: str) -> None:
    async with serving(answering(), limit=1) as (server, client):
        await client.request("GET", "/a", timeout_s=2)
        with pytest.raises(TimeoutError):
            await client.request("GET", target, timeout_s=0.1)
        assert (await client.request("GET", "/b", timeout_s=2)).body == BODY
        assert server.connections == 2 and client.opened == 2
        await asyncio.sleep(0.02)
        assert server.closed_by_client == 1


async def test_a_timeout_waiting_for_a_slot_leaves_the_slots_as_they_were() -> None:
    async with serving(answering(), limit=1) as (server, client):
        stalled = asyncio.create_task(client.request("GET", "/stall", timeout_s=0.5))
        await asyncio.sleep(0.02)
        with pytest.raises(TimeoutError):  # the one slot is taken the whole time
            await client.request("GET", "/a", timeout_s=0.1)
        assert server.requests == [b"GET /stall HTTP/1.1"]
        waiting = asyncio.create_task(client.request("GET", "/b", timeout_s=2))
        with pytest.raises(TimeoutError):
            await stalled
        assert (await waiting).body == BODY  # the slot went to it as the stalled one gave up
        answers = await asyncio.gather(*(client.request("GET", "/c", timeout_s=2) for _ in range(3)))
        assert [a.status for a in answers] == [200] * 3


async def test_a_caller_cancelled_mid_answer_closes_that_connection_and_frees_its_slot() -> None:
    async with serving(answering(), limit=1) as (server, client):
        await client.request("GET", "/a", timeout_s=2)
        for target in ("/half", "/stall"):
            task = asyncio.create_task(client.request("GET", target, timeout_s=2))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await client.request("GET", "/b", timeout_s=2)).body == BODY
        assert server.connections == 3
        await asyncio.sleep(0.02)
        assert server.closed_by_client == 2


async def test_a_caller_cancelled_waiting_for_a_slot_leaves_the_slots_as_they_were() -> None:
    async with serving(answering(), limit=1) as (_server, client):
        first = asyncio.create_task(client.request("GET", "/a", timeout_s=2))
        waiting = asyncio.create_task(client.request("GET", "/b", timeout_s=2))
        await asyncio.sleep(0)
        waiting.cancel()
        assert (await first).body == BODY
        with pytest.raises(asyncio.CancelledError):
            await waiting
        answers = await asyncio.gather(*(client.request("GET", "/c", timeout_s=2) for _ in range(3)))
        assert [a.status for a in answers] == [200] * 3


async def test_a_caller_cancelled_just_as_a_slot_came_to_it_passes_the_slot_on() -> None:
    async with serving(answering(), limit=1) as (_server, client):
        async def first_then_cancel() -> None:
            await client.request("GET", "/a", timeout_s=2)  # its end hands the slot to the waiting one ...
            waiting.cancel()  # ... which is cancelled before it could run

        first = asyncio.create_task(first_then_cancel())
        waiting = asyncio.create_task(client.request("GET", "/b", timeout_s=2))
        await first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert (await client.request("GET", "/c", timeout_s=0.5)).body == BODY


def test_the_client_runs_on_uvloop_the_applications_own_loop() -> None:
    # uvloop's transports are no subclasses of asyncio's: a check of the transport's class, or
    # anything else only the default loop gives, fails there and nowhere in the other tests.
    async def two_requests() -> list[int]:
        async with serving(answering()) as (server, client):
            answers = [await client.request("GET", "/ari/asterisk/info", timeout_s=5) for _ in range(2)]
            return [a.status for a in answers] + [server.connections]

    assert uvloop.run(two_requests()) == [200, 200, 1]
