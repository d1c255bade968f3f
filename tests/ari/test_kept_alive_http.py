"""The ARI requests' own HTTP client (ari/http.py) against a scripted server: connections kept
alive and reused, a connection the server closed while idle replaced without losing the request,
and every way an answer can go wrong ending in a clear failure, never in a reused broken
connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from ari.http import HttpFailure, KeptAliveClient

Reply = Callable[[bytes], Awaitable[bytes | None]]


class Server:
    """Answers each request with what ``reply`` makes of its request line (None: close the
    connection without answering; after an answer saying Connection: close, close it too);
    counts connections and requests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while line := await reader.readline():
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(line.strip() + (b" " + body if body else b""))
                answer = await self.reply(line)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def drop_idle(self) -> None:
        """Close every connection from the server's side (as Asterisk does after 15 s idle)."""
        for writer in self.writers:
            writer.close()


@asynccontextmanager
async def serving(reply: Reply) -> AsyncIterator[tuple[Server, KeptAliveClient]]:
    server = Server(reply)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = KeptAliveClient(f"http://127.0.0.1:{port}")
    try:
        yield server, client
    finally:
        await client.close()
        listener.close()


def ok(body: bytes = b'{"id":"x"}', *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), b"".join(extra), body)


async def always_ok(_line: bytes) -> bytes:
    return ok()


async def test_many_requests_go_over_one_kept_alive_connection_with_their_bodies() -> None:
    async with serving(always_ok) as (server, client):
        for n in range(5):
            answer = await client.request("POST", f"/ari/channels/c{n}/play?media=sound:a", body=b'{"a":1}',
                                          content_type="application/json", timeout_s=2)
            assert (answer.status, answer.body) == (200, b'{"id":"x"}')
        assert server.connections == 1 and client.opened == 1
        assert server.requests[0] == b'POST /ari/channels/c0/play?media=sound:a HTTP/1.1 {"a":1}'


async def test_requests_at_once_each_get_a_connection_and_then_share_them() -> None:
    async with serving(always_ok) as (server, client):
        await asyncio.gather(*(client.request("GET", "/ari/channels", timeout_s=2) for _ in range(4)))
        await asyncio.gather(*(client.request("GET", "/ari/channels", timeout_s=2) for _ in range(4)))
        assert server.connections == 4 and len(server.requests) == 8


async def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_request_sent_once() -> None:
    async with serving(always_ok) as (server, client):
        await client.request("GET", "/ari/asterisk/info", timeout_s=2)
        server.drop_idle()
        await asyncio.sleep(0.05)
        answer = await client.request("POST", "/ari/channels", body=b"{}", timeout_s=2)
        assert answer.status == 200 and server.connections == 2
        assert [r for r in server.requests if r.startswith(b"POST")] == [b"POST /ari/channels HTTP/1.1 {}"]


async def test_an_error_status_is_an_answer_with_its_body() -> None:
    async def refused(_line: bytes) -> bytes:
        body = b'{"message":"Channel not found"}'
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async with serving(refused) as (_server, client):
        answer = await client.request("DELETE", "/ari/channels/gone", timeout_s=2)
        assert (answer.status, answer.body) == (404, b'{"message":"Channel not found"}')


async def test_chunked_bodies_bodies_to_the_end_of_the_connection_and_no_content_are_read_whole() -> None:
    answers = iter([
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1,2\r\n2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[4]",
    ])

    async def scripted(_line: bytes) -> bytes:
        return next(answers)

    async with serving(scripted) as (server, client):
        assert (await client.request("GET", "/a", timeout_s=2)).body == b"[1,2,3]"
        assert (await client.request("POST", "/b", timeout_s=2)).status == 204
        third = client.request("GET", "/c", timeout_s=2)
        assert (await asyncio.wait_for(third, 5)).body == b"[4]"  # read until the server closed
        assert server.connections == 1


async def test_a_connection_closed_after_a_connection_close_answer_is_not_reused() -> None:
    async def closing(_line: bytes) -> bytes:
        return ok(b"{}", b"Connection: close\r\n")

    async with serving(closing) as (server, client):
        for _ in range(3):
            assert (await client.request("GET", "/ari/channels", timeout_s=2)).body == b"{}"
        assert server.connections == 3


async def test_no_answer_in_time_is_a_timeout_and_that_connection_is_never_used_again() -> None:
    slow = asyncio.Event()

    async def late_then_quick(_line: bytes) -> bytes:
        if not slow.is_set():
            slow.set()
            await asyncio.sleep(1.0)  # its answer comes after the client gave up
        return ok()

    async with serving(late_then_quick) as (server, client):
        with pytest.raises(TimeoutError):
            await client.request("POST", "/ari/bridges/b/addChannel?channel=a", timeout_s=0.2)
        answer = await client.request("GET", "/ari/channels", timeout_s=2)
        assert answer.status == 200 and server.connections == 2  # the late answer is never read as this one's


CUT_SHORT = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nshort"


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n", CUT_SHORT, None],
                         ids=["not HTTP", "cut short", "closed without an answer"])
async def test_what_is_not_a_whole_http_answer_is_a_failure(answer: bytes | None) -> None:
    async def broken(_line: bytes) -> bytes | None:
        return answer

    async with serving(broken) as (_server, client):
        with pytest.raises(HttpFailure):
            await client.request("GET", "/ari/channels", timeout_s=2)


async def test_a_server_that_is_not_there_is_a_failure_that_says_where() -> None:
    client = KeptAliveClient("http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(HttpFailure, match="127.0.0.1:9"):
        await client.request("GET", "/ari/channels", timeout_s=2)


def test_only_http_urls_with_a_host_are_taken() -> None:
    with pytest.raises(ValueError, match="http"):
        KeptAliveClient("ws://127.0.0.1:8088")
