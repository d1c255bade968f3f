"""The application's Redis client answers as redis-py does, on one shared connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError

from core.lean_redis import LeanRedis, lean_from_pool, listen
from devtools.embedded import RedisProcess
from tests.support.redis import redis_commands_counted


async def everyday_commands(r: Redis, p: str) -> list[Any]:
    """What the application sends, reply for reply (errors by their type and text)."""
    out: list[Any] = [await r.set(p + "k", "v"), await r.get(p + "k"), await r.getdel(p + "k"), await r.get(p + "k")]
    out += [await r.zadd(p + "z", {"a": 1.5, "b": 2}), await r.zrange(p + "z", 0, -1, withscores=True),
            await r.zrangebyscore(p + "z", "-inf", 2), await r.hset(p + "h", mapping={"x": 1, "y": "é"}),
            await r.hgetall(p + "h"), await r.hmget(p + "h", ["x", "q"]), await r.sadd(p + "s", "1", "2"),
            await r.smembers(p + "s"), await r.exists(p + "s"), await r.delete(p + "s"),
            await r.incrbyfloat(p + "f", 0.1), await r.expire(p + "h", 10), await r.hgetall(p + "none")]
    sha = await r.script_load("return {1, 'a', ARGV[1], redis.call('GET', KEYS[1])}")
    out += [sha, await r.evalsha(sha, 1, p + "f", "x"), await r.script_exists(sha)]
    for failing in (r.evalsha("0" * 40, 0), r.incr(p + "h")):
        try:
            await failing
        except ResponseError as exc:
            out.append((type(exc).__name__, str(exc).replace(p, "P:")))
    async with r.pipeline(transaction=True) as pipe:
        pipe.set(p + "t", 1).incr(p + "t").hgetall(p + "none").zrange(p + "z", 0, 0, withscores=True)
        out.append(await pipe.execute())
    async with r.pipeline(transaction=False) as pipe:
        pipe.set(p + "t", "x").incr(p + "t").get(p + "t")
        replies = await pipe.execute(raise_on_error=False)
        out.append([type(x).__name__ if isinstance(x, Exception) else x for x in replies])
    async with r.pipeline(transaction=True) as pipe:
        pipe.set(p + "t", "x").incr(p + "t").get(p + "t")
        with pytest.raises(ResponseError) as raised:
            await pipe.execute()
        out.append(str(raised.value).replace(p, "P:"))
    return out


async def test_every_everyday_command_answers_as_redis_py_does(lean: LeanRedis, redis: Redis,
                                                              redis_prefix: str) -> None:
    assert await everyday_commands(lean, redis_prefix + ":lean:") == await everyday_commands(
        redis, redis_prefix + ":py:")


async def test_a_script_redis_forgot_raises_noscript_for_the_engine_to_load_it_again(lean: LeanRedis) -> None:
    with pytest.raises(NoScriptError):
        await lean.evalsha("f" * 40, 0)
    async with lean.pipeline(transaction=False) as pipe:
        pipe.evalsha("f" * 40, 0)
        (reply,) = await pipe.execute(raise_on_error=False)
    assert isinstance(reply, NoScriptError)


async def test_bad_arguments_are_refused_before_anything_is_sent(lean: LeanRedis, redis_prefix: str) -> None:
    with pytest.raises(DataError):
        await lean.set(redis_prefix + ":k", None)  # type: ignore[arg-type]
    assert await lean.ping() is True  # the connection is still in step


async def test_many_coroutines_share_the_connection_and_each_gets_its_own_reply(lean: LeanRedis,
                                                                             redis_prefix: str) -> None:
    key = redis_prefix + ":n"
    counts = await asyncio.gather(*(lean.incr(key) for _ in range(500)))
    assert sorted(counts) == list(range(1, 501))
    values = await asyncio.gather(*(lean.set(f"{key}:{i}", i) for i in range(50)))
    assert values == [True] * 50
    assert await asyncio.gather(*(lean.get(f"{key}:{i}") for i in range(50))) == [str(i).encode() for i in range(50)]


async def test_a_cancelled_caller_does_not_put_the_replies_out_of_step(lean: LeanRedis, redis_prefix: str) -> None:
    key = redis_prefix + ":c"
    await lean.set(key, "mine")
    waiting = asyncio.ensure_future(lean.get(key))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await lean.get(key) == b"mine"
    assert await lean.incr(key + ":i") == 1


async def test_a_blocking_read_takes_a_pooled_connection_and_holds_up_nobody(lean: LeanRedis,
                                                                            redis_prefix: str) -> None:
    key = redis_prefix + ":list"
    blocked = asyncio.ensure_future(lean.blpop([key], timeout=2))
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(lean.rpush(key, "x"), 0.5) == 1
    assert tuple(await asyncio.wait_for(blocked, 2)) == (key.encode(), b"x")


async def test_a_pubsub_is_redis_pys_own(lean: LeanRedis, redis_prefix: str) -> None:
    channel = redis_prefix + ":chan"
    async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        assert await lean.publish(channel, "hello") == 1
        message = await pubsub.get_message(timeout=1)
        while message is None:
            message = await pubsub.get_message(timeout=1)
    assert message["data"] == b"hello"


async def test_the_commands_counted_by_the_tests_helper_still_count(lean: LeanRedis, redis_prefix: str) -> None:
    with redis_commands_counted(lean) as sent:
        await lean.get(redis_prefix + ":x")
        async with lean.pipeline() as pipe:
            pipe.get(redis_prefix + ":x")
            await pipe.execute()
    assert sent == ["get", "pipeline"]


async def test_when_redis_goes_and_comes_back_the_next_command_connects_again(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path)  # a private server: this one is stopped
    server.start()
    client = lean_from_pool(BlockingConnectionPool.from_url(server.url, max_connections=2))
    try:
        assert await client.set("k", "1") is True
        server.stop()
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        server.start()
        assert await client.get("k") == b"1"  # saved on the way out, read back on the way in
        assert await client.set("k", "2") is True
    finally:
        await client.aclose()
        server.stop()


async def next_messages(pubsub: Any, count: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(2):
        while len(got) < count:
            message = await pubsub.get_message(timeout=1)
            if message is not None:
                got.append(message["data"])
    return got


async def test_news_published_soon_rides_in_the_write_of_the_next_command_in_order(lean: LeanRedis,
                                                                                    redis_prefix: str) -> None:
    channel = redis_prefix + ":news"
    async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        for n in range(3):
            lean.publish_soon(channel, f"m{n}", within_s=30)  # would wait 30 s for a command to ride with
        assert await lean.get(redis_prefix + ":x") is None
        assert await next_messages(pubsub, 3) == [b"m0", b"m1", b"m2"]


async def test_news_with_no_command_to_ride_with_goes_alone_a_moment_later_even_while_earlier_news_is_on_its_way(
        lean: LeanRedis, redis_prefix: str) -> None:
    channel = redis_prefix + ":alone"
    async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        lean.publish_soon(channel, "first", within_s=0.001)
        await asyncio.sleep(0.003)  # its flush has started and may still wait for Redis's reply
        lean.publish_soon(channel, "second", within_s=0.001)
        assert await next_messages(pubsub, 2) == [b"first", b"second"]


async def test_news_that_must_not_wait_long_is_not_held_by_a_command_that_may(lean: LeanRedis,
                                                                            redis_prefix: str) -> None:
    """A deletion may wait a second for company; the news given after it goes in its own time."""
    channel, key = redis_prefix + ":hurry", redis_prefix + ":later"
    await lean.set(key, "x")
    async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        lean.send_soon("DEL", key, within_s=30)
        lean.publish_soon(channel, "now", within_s=0.01)
        async with asyncio.timeout(1):  # not 30 s
            assert await next_messages(pubsub, 1) == [b"now"]
        assert await lean.exists(key) == 0  # the deletion went with it, in order


async def test_news_waiting_to_ride_goes_out_when_the_client_closes(redis_server: RedisProcess,
                                                                    redis_prefix: str) -> None:
    channel = redis_prefix + ":last"
    listener = lean_from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=2))
    client = lean_from_pool(BlockingConnectionPool.from_url(redis_server.url, max_connections=2))
    try:
        async with listener.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(channel)
            client.publish_soon(channel, "last words", within_s=30)
            await client.aclose()
            assert await next_messages(pubsub, 1) == [b"last words"]
    finally:
        await listener.aclose()


async def test_a_command_sent_along_that_redis_refuses_is_logged_and_the_command_it_rode_with_answers(
        lean: LeanRedis, redis_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    key = redis_prefix + ":a-list"
    await lean.rpush(key, "x")
    lean.send_soon("INCR", key, within_s=30)  # WRONGTYPE: nobody waits for this reply
    assert await lean.llen(key) == 1
    assert any("refused" in r.getMessage() and "WRONGTYPE" in r.getMessage() for r in caplog.records)


async def test_writes_told_without_a_reply_are_applied_in_order_behind_what_rode_and_replies_stay_in_step(
        lean: LeanRedis, redis_prefix: str) -> None:
    key, items = redis_prefix + ":told", redis_prefix + ":told-list"
    lean.send_soon("SET", key, "rode", within_s=30)  # queued before the told writes: applied before them
    await lean.tell(("APPEND", key, "+told"), ("RPUSH", items, "a"))
    await lean.tell(("RPUSH", items, "b"))
    assert await lean.get(key) == b"rode+told"  # the next reply read is this command's own
    assert await lean.lrange(items, 0, -1) == [b"a", b"b"]


async def test_a_server_that_refuses_to_skip_replies_gets_told_writes_as_requests(
        redis: Redis, redis_server: RedisProcess, redis_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    """A user an ACL keeps from CLIENT: the writes still land, answered, and the connection
    stays in step."""
    user = redis_prefix.replace(":", "-") + "-noclient"
    await redis.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-client")
    limited = lean_from_pool(BlockingConnectionPool.from_url(
        redis_server.url.replace("redis://", f"redis://{user}:pw@"), max_connections=2))
    try:
        key = redis_prefix + ":answered"
        await limited.tell(("SET", key, "1"), ("INCR", key))
        assert await limited.get(key) == b"2"
        with pytest.raises(ResponseError, match="WRONGTYPE"):  # refused: heard, as a request is
            await limited.tell(("LPUSH", key, "x"))
        assert await limited.get(key) == b"2"
        assert any("does not skip replies" in r.getMessage() for r in caplog.records)
    finally:
        await limited.aclose()
        await redis.execute_command("ACL", "DELUSER", user)


async def test_telling_nothing_sends_what_rides_at_once(lean: LeanRedis, redis_prefix: str) -> None:
    channel = redis_prefix + ":now"
    async with lean.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        lean.publish_soon(channel, "at once", within_s=30)
        await lean.tell()
        async with asyncio.timeout(2):  # not 30 s
            assert await next_messages(pubsub, 1) == [b"at once"]


@pytest.mark.parametrize("client", ["lean", "redis"])
async def test_a_listener_hears_every_message_of_its_channels_in_order_once_subscribed(
        client: str, lean: LeanRedis, redis: Redis, redis_prefix: str) -> None:
    """On the application's client a connection of its own; on another, redis-py's PubSub."""
    listening = lean if client == "lean" else redis
    news, other = redis_prefix + ":news", redis_prefix + ":other"
    heard: list[tuple[str, bytes]] = []
    subscribed, three = asyncio.Event(), asyncio.Event()

    def hear(channel: str, data: bytes) -> None:
        heard.append((channel, data))
        if len(heard) == 3:
            three.set()

    task = asyncio.create_task(listen(listening, [news, other], hear, subscribed.set))
    try:
        async with asyncio.timeout(2):
            await subscribed.wait()
        for channel, text in ((news, "1"), (redis_prefix + ":not-ours", "x"), (other, "2"), (news, "3")):
            await redis.publish(channel, text)
        async with asyncio.timeout(2):
            await three.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert heard == [(news, b"1"), (other, b"2"), (news, b"3")]


async def test_a_listener_whose_connection_is_lost_says_so(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path)  # a private server: this one is stopped
    server.start()
    client = lean_from_pool(BlockingConnectionPool.from_url(server.url, max_connections=2))
    subscribed = asyncio.Event()
    try:
        task = asyncio.create_task(listen(client, ["news"], lambda c, d: None, subscribed.set))
        async with asyncio.timeout(2):
            await subscribed.wait()
        server.stop()
        with pytest.raises(RedisConnectionError):
            async with asyncio.timeout(5):
                await task
    finally:
        await client.aclose()
        server.stop()
