"""A TCP relay in front of a server, for tests that cut connections as a network fault does.

The application is pointed at the relay instead of the server (e.g. ARI's HTTP port). Each
connection is told apart by the first bytes its client sends (an HTTP request line such as
``GET /ari/events?app=...``), so a test can cut only the ARI events WebSocket and leave the
REST requests alone, and keep such connections out for a while (an outage), without touching
the application's code or the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Which connections a cut or an outage applies to, by the first bytes their client sent.
Match = Callable[[bytes], bool]


def ari_events(first: bytes) -> bool:
    """The ARI events WebSocket's upgrade request."""
    return b"/ari/events" in first.split(b"\r\n", 1)[0]


@dataclass(eq=False)
class _Link:
    first: bytes
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    #: What the server sends is thrown away: a path that broke without either side knowing.
    muted: bool = False

    def abort(self) -> None:
        # abort(): no FIN after pending data, no close frame: the peers see the line drop.
        self.client.transport.abort()
        self.server.transport.abort()


class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``target``; :meth:`cut` drops live connections and
    :meth:`refuse_for` drops new ones for a while."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._refuse: Match | None = None
        self._refuse_until = 0.0
        #: Connections dropped at once because an outage was on, per first request line.
        self.refused: list[bytes] = []
        #: Connections relayed, per first request line (e.g. to count WebSocket reconnects).
        self.accepted: list[bytes] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        for link in list(self._links):
            link.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self, match: Match = lambda first: True) -> int:
        """Drop every live connection that ``match`` selects; how many."""
        hit = [link for link in self._links if match(link.first)]
        for link in hit:
            link.abort()
            self._links.discard(link)
        return len(hit)

    def mute(self, match: Match = lambda first: True) -> int:
        """From now on, throw away what the server sends on the live connections ``match``
        selects, keeping them open: as a network path that broke silently, the server believes
        it delivers (e.g. ARI events), the client waits. How many were muted."""
        hit = [link for link in self._links if match(link.first)]
        for link in hit:
            link.muted = True
        return len(hit)

    def refuse_for(self, seconds: float, match: Match = lambda first: True) -> None:
        """For ``seconds``, drop new connections that ``match`` selects as soon as they ask."""
        self._refuse, self._refuse_until = match, time.monotonic() + seconds

    def refusing(self) -> bool:
        return self._refuse is not None and time.monotonic() < self._refuse_until

    def live(self, match: Match = lambda first: True) -> int:
        return sum(1 for link in self._links if match(link.first))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(65536)
        except ConnectionError:
            first = b""
        if not first:
            writer.close()
            return
        line = first.split(b"\r\n", 1)[0]
        if self.refusing() and self._refuse is not None and self._refuse(first):
            self.refused.append(line)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted.append(line)
        link = _Link(first, writer, up_writer)
        self._links.add(link)
        up_writer.write(first)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer, link))
        except asyncio.CancelledError:
            pass  # the test's loop is closing: the relay ends with it
        finally:
            self._links.discard(link)
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link | None = None) -> None:
        try:
            while data := await src.read(65536):
                if link is not None and link.muted:
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            # One side dropped: so does the other, as across a broken network path.
            dst.transport.abort()
            return
        with contextlib.suppress(Exception):
            dst.write_eof()  # an orderly close is passed on as one
