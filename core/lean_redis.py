"""redis-py's client with a shorter road for the commands of the call path.

Why (issue 15): profiling ``hotline serve`` under calls on the real switch put 28 % of the
application's CPU in redis-py's per-command machinery: a pool checkout with its locks and
observability hooks, a timeout context per read, a coroutine per reply. That is 50-60 µs of
CPU per command where writing the command and reading the reply on the socket costs about 11
(``bench/redis_client.py`` measures both). A whole call sends about twenty commands or
pipelines.

:class:`LeanRedis` is a redis-py ``Redis`` (every command method, the response callbacks, the
errors and the pub/sub stay redis-py's) whose plain commands and pipelines travel on one
shared connection, multiplexed: a request is written whole and its replies are matched in
order, so many coroutines share the socket without a pool or a lock. Only what needs a
connection of its own goes through redis-py's pool: blocking reads, per-connection state
(WATCH, MULTI by hand, SELECT, subscriptions), undecoded reads, pipelines that watch keys.

The shared connection speaks what redis-py's own does (RESP3 after ``HELLO 3``, parsed by the
same hiredis reader, replies shaped by the same callbacks), so a command answers the same
either way.

Writes nobody needs an answer to (a call's state saved, news published) can also go without
one (:meth:`LeanRedis.tell`, each behind ``CLIENT REPLY SKIP``): on this kind of host a
process woken for a reply spends more than the command costs (issue 15), and a write sent
before the next act is applied before it, in order, as an awaited one is. What is lost is
hearing that Redis refused it (out of memory, a read-only replica): the next awaited command
says so. A reply lost with the connection raises ``redis.exceptions.ConnectionError`` and
is not sent again: a script may have run (see ``queues/engine.py``). The next command
connects again, with a short backoff while Redis is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ExecAbortError, InvalidResponse, ResponseError, WatchError

#: Commands that hold their connection (they block, or change its state): never on the shared one.
HOLDS_CONNECTION = frozenset({
    "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "XREAD",
    "XREADGROUP", "WAIT", "WAITAOF", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
    "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "SELECT", "WATCH", "UNWATCH", "MULTI", "EXEC",
    "DISCARD", "CLIENT", "HELLO", "AUTH", "RESET", "QUIT", "SYNC", "PSYNC", "READONLY", "READWRITE",
})
#: Tries to reach Redis before a command fails, and the pauses between them (as the pool's retry).
CONNECT_TRIES = 3
CONNECT_BACKOFF_S = (0.02, 0.04, 0.08)
#: How long one try to connect (and say HELLO) may take when the URL says nothing.
CONNECT_TIMEOUT_S = 5.0
#: How long a message given to ``publish_soon`` may wait for a command to ride with.
RIDE_MAX_S = 0.05
#: At most this many messages wait to ride (Redis away): more are dropped and counted.
MAX_RIDERS = 10_000
#: hiredis's answer for "not a whole reply yet" (its default, False, is also a RESP3 boolean).
_MORE = object()


def _command(*words: str) -> bytes:
    args: tuple[Any, ...] = words  # hiredis's stub types a tuple of one
    packed: bytes = hiredis.pack_command(args)
    return packed


#: In front of a command sent without a reply: Redis skips the next command's reply (and makes
#: none for this one).
_SKIP_REPLY = _command("CLIENT", "REPLY", "SKIP")
#: Whether the server skips replies, asked once a connection: the probe's last word comes back
#: alone when it does (a server that refuses CLIENT, by an ACL or a renamed command, answers all three).
_PROBE = (_SKIP_REPLY, _command("ECHO", "skipped"), _command("ECHO", "told"))

log = logging.getLogger(__name__)


class _Errors(BaseParser):
    """redis-py's mapping of error replies to exception classes (NOSCRIPT -> NoScriptError...)."""

    def on_disconnect(self) -> None:  # pragma: no cover - never connected: only parse_error is used
        pass

    def on_connect(self, connection: Any) -> None:  # pragma: no cover
        pass


@dataclass(slots=True)
class _Request:
    future: asyncio.Future[list[Any]]
    count: int
    #: Replies of riders (see :meth:`LeanRedis.publish_soon`) in front of the caller's: dropped.
    skip: int = 0
    replies: list[Any] = field(default_factory=list)


class _Wire(asyncio.Protocol):
    """One connection; requests answered in the order they were written."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=_Errors.parse_error,
                                      notEnoughData=_MORE)
        self._transport: asyncio.WriteTransport | None = None
        self._waiting: deque[_Request] = deque()
        self._push = getattr(hiredis, "PushNotification", None)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is no asyncio.Transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not _MORE:
            if self._push is not None and isinstance(reply, self._push):
                continue  # nothing here subscribes or tracks: a server's notice, not a reply
            if not self._waiting:  # a reply to nobody: the stream is out of step, start again
                self._fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            request = self._waiting[0]
            request.replies.append(reply)
            if len(request.replies) == request.count + request.skip:
                self._waiting.popleft()
                if request.skip:
                    _refused_riders(request.replies[:request.skip])
                if not request.future.done():  # its caller may have been cancelled: the replies are read anyway
                    request.future.set_result(request.replies[request.skip:])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = f" ({exc})" if exc else ""
        self._fail_waiting(RedisConnectionError(f"Connection closed by server.{reason}"))

    def send(self, packed: Sequence[bytes], count: int, skip: int = 0) -> asyncio.Future[list[Any]]:
        """Write ``packed`` (``skip`` riders, then ``count`` commands) at once; the future has
        the commands' replies."""
        if self.closed or self._transport is None:
            raise RedisConnectionError("Connection closed by server.")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if count + skip == 0:  # nothing to send (riders already gone with another request)
            future.set_result([])
            return future
        self._waiting.append(_Request(future, count, skip))
        self._transport.writelines(packed)
        return future

    def tell(self, packed: Sequence[bytes]) -> None:
        """Write ``packed`` at once, each command with no reply (``CLIENT REPLY SKIP``)."""
        if self.closed or self._transport is None:
            raise RedisConnectionError("Connection closed by server.")
        self._transport.writelines([part for command in packed for part in (_SKIP_REPLY, command)])

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True

    def _fail(self, error: Exception) -> None:
        self.close()
        self._fail_waiting(error)

    def _fail_waiting(self, error: Exception) -> None:
        while self._waiting:
            request = self._waiting.popleft()
            if not request.future.done():
                request.future.set_exception(error)


class _Listener(asyncio.Protocol):
    """A subscribed connection: each message handed on as it is read (see :func:`listen`)."""

    def __init__(self, on_message: Callable[[str, bytes], None]) -> None:
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=_Errors.parse_error,
                                      notEnoughData=_MORE)
        self._on_message = on_message
        self._transport: asyncio.WriteTransport | None = None
        loop = asyncio.get_running_loop()
        #: HELLO's reply; then the count of channels whose subscription Redis confirmed.
        self.hello: asyncio.Future[Any] = loop.create_future()
        self.confirmed, self.all_confirmed = 0, loop.create_future()
        self.wanted = 0
        #: Set (to an error) when the connection is lost.
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is no asyncio.Transport)

    def write(self, packed: bytes) -> None:
        assert self._transport is not None
        self._transport.write(packed)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not _MORE:
            if not self.hello.done():
                self.hello.set_result(reply)
            elif isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                try:
                    self._on_message(reply[1].decode(), reply[2])
                except Exception:  # one listener's mistake must not end the subscription
                    log.exception("redis: handling a message on %s failed", reply[1])
            elif isinstance(reply, list) and reply and reply[0] == b"subscribe":
                self.confirmed += 1
                if self.confirmed >= self.wanted and not self.all_confirmed.done():
                    self.all_confirmed.set_result(None)
            elif isinstance(reply, Exception):
                self._lose(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(RedisConnectionError(f"Connection closed by server.{f' ({exc})' if exc else ''}"))

    def _lose(self, error: Exception) -> None:
        for waiting in (self.hello, self.all_confirmed, self.lost):
            if not waiting.done():
                waiting.set_exception(error)
        self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Link:
    """The shared connection: made when first needed, made again after it is lost."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self._host, self._port = kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))
        self._db = int(kwargs.get("db") or 0)
        self._username, self._password = kwargs.get("username"), kwargs.get("password")
        self._timeout = kwargs.get("socket_connect_timeout") or CONNECT_TIMEOUT_S
        self._wire: _Wire | None = None
        self._connecting: asyncio.Lock | None = None
        self._riders: list[bytes] = []
        self._ride_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        #: Riders lost (the connection failed under them): news nobody waited for.
        self.riders_lost = 0
        #: Whether the server skips replies (see _PROBE); until a connection says no, it does.
        self.tells = True

    async def call(self, packed: Sequence[bytes], count: int) -> list[Any]:
        wire = await self._live_wire()
        riders = self._take_riders()
        try:
            return await wire.send([*riders, *packed] if riders else packed, count, len(riders))
        except RedisConnectionError:  # refused at once or lost on the way: the riders with it
            self.riders_lost += len(riders)
            raise

    async def tell(self, packed: Sequence[bytes]) -> None:
        """Write what rides and ``packed`` now, without their replies (a server that cannot skip
        them: as a request, its first refusal raised)."""
        wire = await self._live_wire()
        if not self.tells:
            for reply in await self.call(packed, len(packed)):
                if isinstance(reply, Exception):
                    raise reply
            return
        riders = self._take_riders()
        try:
            wire.tell([*riders, *packed])
        except RedisConnectionError:
            self.riders_lost += len(riders)
            raise

    async def _live_wire(self) -> _Wire:
        wire = self._wire
        return wire if wire is not None and not wire.closed else await self._connected()

    def _take_riders(self) -> list[bytes]:
        riders, self._riders = self._riders, []
        if self._ride_timer is not None:
            self._ride_timer.cancel()
            self._ride_timer = None
        return riders

    def ride(self, packed: bytes, within_s: float) -> None:
        """``packed`` goes out with the next request, or alone after ``within_s``."""
        if len(self._riders) >= MAX_RIDERS:  # Redis away for long: news is dropped, memory is not spent
            self.riders_lost += 1
            return
        self._riders.append(packed)
        loop = asyncio.get_running_loop()
        due = loop.time() + within_s
        if self._ride_timer is not None and self._ride_timer.when() <= due:
            return  # they all go then at the latest
        if self._ride_timer is not None:  # news that must not wait as long as what rides already
            self._ride_timer.cancel()
        self._ride_timer = loop.call_at(due, self._send_riders)

    def _send_riders(self) -> None:
        self._ride_timer = None
        wire = self._wire
        if self._riders and self.tells and wire is not None and not wire.closed:
            # Nobody waits for them: no reply to wake this process again for.
            with contextlib.suppress(RedisConnectionError):  # closed meanwhile: the flush below connects
                wire.tell(self._take_riders())
        if self._riders:  # a flush of earlier riders may still wait for its replies: one more
            flush = asyncio.get_running_loop().create_task(self._flush(), name="redis-riders")
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001 - news: counted and logged, never raised into a caller
            log.warning("redis: %d published messages lost: %s", self.riders_lost, exc or type(exc).__name__)

    async def flush(self) -> None:
        """Send what rides now (at shutdown: the last news goes out)."""
        if self._riders:
            await self.call([], 0)

    def close(self) -> None:
        if self._ride_timer is not None:
            self._ride_timer.cancel()
        for flush in self._flushes:
            flush.cancel()
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    async def _connected(self) -> _Wire:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # one attempt for everybody waiting
            if self._wire is not None and not self._wire.closed:
                return self._wire
            for attempt in range(CONNECT_TRIES):
                try:
                    self._wire = await self._connect()
                    return self._wire
                except (OSError, TimeoutError) as exc:
                    if attempt == CONNECT_TRIES - 1:
                        raise RedisConnectionError(f"Error connecting to {self._host}:{self._port}. {exc}") from exc
                    await asyncio.sleep(CONNECT_BACKOFF_S[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> _Wire:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            _, wire = await loop.create_connection(_Wire, self._host, self._port)
            commands: list[tuple[Any, ...]] = [self._hello()]
            if self._db:
                commands.append(("SELECT", self._db))
            try:
                replies = await wire.send([hiredis.pack_command(c) for c in commands], len(commands))
            except BaseException:
                wire.close()
                raise
            for reply in replies:
                if isinstance(reply, Exception):
                    wire.close()
                    raise reply
            # A server that would not skip has answered the probe's every word: closed, out of step.
            refused = self.tells and not await self._skips(wire)
        return await self._connect() if refused else wire

    def _hello(self) -> tuple[Any, ...]:
        hello: list[Any] = ["HELLO", 3]
        if self._password is not None:
            hello += ["AUTH", self._username or "default", self._password]
        return tuple(hello)

    async def listen(self, channels: Sequence[str], on_message: Callable[[str, bytes], None],
                     on_subscribed: Callable[[], None]) -> None:
        """See :func:`listen`: on a connection of its own (a subscribed one takes no commands)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            _, listener = await loop.create_connection(lambda: _Listener(on_message), self._host, self._port)
        try:
            listener.wanted = len(channels)
            listener.write(hiredis.pack_command(self._hello()))
            listener.write(_command("SUBSCRIBE", *channels))
            async with asyncio.timeout(self._timeout):
                if isinstance(reply := await listener.hello, Exception):
                    raise reply
                await listener.all_confirmed
            on_subscribed()
            await listener.lost  # raises: the connection is gone
        finally:
            listener.close()
            for waiting in (listener.hello, listener.all_confirmed, listener.lost):
                if waiting.done() and not waiting.cancelled():
                    waiting.exception()  # retrieved: the error raised above says it

    async def _skips(self, wire: _Wire) -> bool:
        """Whether the server skips a reply when asked (else :meth:`tell` awaits replies)."""
        try:
            (reply,) = await wire.send(_PROBE, 1)
        except BaseException:
            wire.close()
            raise
        if reply == b"told":
            return True
        log.warning("redis: the server does not skip replies (%s): writes nobody waits for are answered",
                    reply)
        self.tells = False
        wire.close()
        return False


def _refused_riders(replies: list[Any]) -> None:
    """Nobody waits for a rider's reply: one Redis refused (out of memory, a read-only
    replica) is logged, or a state saved ahead (calls/store.py) would be lost in silence."""
    for reply in replies:
        if isinstance(reply, Exception):
            log.warning("redis: a command sent along with another was refused: %s", reply)


def _name(args: Sequence[Any]) -> str:
    first = args[0]
    text = first.decode() if isinstance(first, bytes) else str(first)
    return text.split(" ", 1)[0].upper()


class _Packer:
    """Arguments to the wire, as redis-py's encoder would have them (its errors included)."""

    def __init__(self, redis: Redis) -> None:
        self._encode = redis.get_encoder().encode  # type: ignore[no-untyped-call]

    def pack(self, args: Sequence[Any]) -> bytes:
        first = args[0]
        words: tuple[Any, ...] = tuple(first.split()) if isinstance(first, str | bytes) else (first,)
        # bytes, str and int go as they are (hiredis writes them as redis-py does); anything else
        # through redis-py's encoder, which formats floats and refuses None, bools and the like.
        rest = tuple(a if type(a) in (bytes, str, int) else self._encode(a) for a in args[1:])
        try:
            packed: bytes = hiredis.pack_command(words + rest)
            return packed
        except TypeError as exc:
            raise DataError(str(exc)) from exc


async def _shaped(callbacks: Any, name: Any, reply: Any, options: dict[str, Any]) -> Any:
    """A reply as redis-py's ``parse_response`` gives it."""
    options.pop("keys", None)
    callback = callbacks.get(name)
    if callback is None:
        return reply
    shaped = callback(reply, **options)
    return await shaped if inspect.isawaitable(shaped) else shaped


class LeanRedis(Redis):
    """See the module's doc. Build it with :meth:`from_pool` like a ``Redis``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.connection_pool
        # The shared connection only where it can be exactly redis-py's: plain TCP, bytes replies.
        plain = pool.connection_class is Connection and not pool.connection_kwargs.get("decode_responses")
        self._link: _Link | None = _Link(pool.connection_kwargs) if plain else None
        self._packer = _Packer(self)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self._link is None or _name(args) in HOLDS_CONNECTION or "NEVER_DECODE" in options:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        (reply,) = await self._link.call([self._packer.pack(args)], 1)
        if isinstance(reply, ResponseError):
            if "EMPTY_RESPONSE" in options:
                return options["EMPTY_RESPONSE"]
            raise reply
        options.pop("EMPTY_RESPONSE", None)
        return await _shaped(self.response_callbacks, args[0], reply, options)

    @property
    def rides(self) -> bool:
        """Whether :meth:`publish_soon` and :meth:`send_soon` ride with other commands."""
        return self._link is not None

    def publish_soon(self, channel: str, message: str | bytes, *, within_s: float = RIDE_MAX_S) -> None:
        """PUBLISH ``message`` in the same write as the next command this client sends, or
        alone after ``within_s``: news (agents' events for the desktops) need no round trip of
        their own, and the call path's next command is usually a moment away. Nothing waits for
        it; one lost with the connection is counted (``riders_lost``) and logged."""
        self.send_soon("PUBLISH", channel, message, within_s=within_s)

    def send_soon(self, *args: Any, within_s: float = RIDE_MAX_S) -> None:
        """Any command, as :meth:`publish_soon` sends a PUBLISH: with the next command, or alone
        after ``within_s``; its reply (an error too) is read and dropped."""
        if self._link is None:
            raise RuntimeError("send_soon needs the shared connection (a plain redis:// URL)")
        self._link.ride(self._packer.pack(args), within_s)

    async def tell(self, *commands: Sequence[Any]) -> None:
        """Send ``commands`` (each a command's arguments, as to ``execute_command``) in one write
        now, with what rides, and read no reply: for writes whose answer nobody needs (see the
        module's doc). Raises only when Redis cannot be reached."""
        if self._link is None:
            raise RuntimeError("tell needs the shared connection (a plain redis:// URL)")
        await self._link.tell([self._packer.pack(args) for args in commands])

    @property
    def riders_lost(self) -> int:
        return self._link.riders_lost if self._link is not None else 0

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        if self._link is None:
            return super().pipeline(transaction, shard_hint)
        return LeanPipeline(self._link, self._packer, self.connection_pool, self.response_callbacks, transaction,
                            shard_hint)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._link is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._link.flush(), CONNECT_TIMEOUT_S)
            self._link.close()
        await super().aclose(close_connection_pool)


class LeanPipeline(Pipeline):
    """redis-py's pipeline, sent on the shared connection unless it watches keys."""

    def __init__(self, link: _Link, packer: _Packer, *args: Any) -> None:
        super().__init__(*args)
        self._link, self._packer = link, packer

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if self.watching or self.explicit_transaction or self.scripts or not stack or any(
                _name(args) in HOLDS_CONNECTION or "NEVER_DECODE" in options for args, options in stack):
            return await super().execute(raise_on_error)
        try:
            packed = [self._packer.pack(args) for args, _ in stack]
            if self.is_transaction:
                replies = await self._transaction(packed)
            else:
                replies = await self._link.call(packed, len(packed))
            if raise_on_error:
                self.raise_first_error(stack, replies)
            return [r if isinstance(r, Exception) else await _shaped(self.response_callbacks, args[0], r, dict(options))
                    for r, (args, options) in zip(replies, stack, strict=True)]
        finally:
            await self.reset()  # type: ignore[no-untyped-call]

    async def _transaction(self, packed: list[bytes]) -> list[Any]:
        """MULTI, the commands, EXEC: the commands' replies, errors in place (as redis-py)."""
        wire = [hiredis.pack_command(("MULTI",)), *packed, hiredis.pack_command(("EXEC",))]
        replies = await self._link.call(wire, len(wire))
        queued, done = replies[1:-1], replies[-1]
        errors = [(i, r) for i, r in enumerate(queued) if isinstance(r, ResponseError)]
        for i, error in errors:
            self.annotate_exception(error, i + 1, self.command_stack[i][0])
        if isinstance(done, ExecAbortError | ResponseError):
            raise errors[0][1] if errors else done
        if done is None:
            raise WatchError("Watched variable changed.")
        results = list(done)
        for i, error in errors:
            results.insert(i, error)
        return results


async def listen(redis: Redis, channels: Sequence[str], on_message: Callable[[str, bytes], None],
                 on_subscribed: Callable[[], None]) -> None:
    """Subscribe to ``channels`` and hand each message to ``on_message(channel, data)``, in the
    order published, until the connection is lost (raises ``redis.exceptions.ConnectionError``:
    subscribe again, what was published meanwhile is gone) or the caller is cancelled.
    ``on_subscribed`` is called once Redis confirmed every channel.

    Why not redis-py's ``PubSub``: each message read there went through its parser, retry,
    push-handler and logging layers and a coroutine of its own, about twenty calls of Python for
    a few bytes, and every process reads every agent event of the centre (several a call, issue
    15). Here a message is one parsed push and one call. On another client than the
    application's (a Unix socket, TLS): redis-py's ``PubSub``, the same contract."""
    link = redis._link if isinstance(redis, LeanRedis) else None
    if link is not None:
        await link.listen(channels, on_message, on_subscribed)
        return
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(*channels)
        on_subscribed()
        async for message in pubsub.listen():
            channel = message["channel"]
            on_message(channel.decode() if isinstance(channel, bytes) else str(channel), message["data"])
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()


def riding(redis: Redis) -> LeanRedis | None:
    """``redis`` when it can send commands along with others (:meth:`LeanRedis.send_soon`), else None."""
    return redis if isinstance(redis, LeanRedis) and redis.rides else None


def lean_from_pool(pool: Any) -> LeanRedis:
    """A :class:`LeanRedis` owning ``pool`` (``aclose()`` closes it), like ``Redis.from_pool``."""
    client = LeanRedis.from_pool(pool)
    assert isinstance(client, LeanRedis)
    return client


__all__ = ["HOLDS_CONNECTION", "LeanPipeline", "LeanRedis", "lean_from_pool", "listen", "riding"]
