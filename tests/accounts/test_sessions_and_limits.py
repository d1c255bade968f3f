"""Sessions live in Redis under the token's hash and slide while used; failed logins are
counted per username and per address in fixed windows."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from accounts.ratelimit import LoginLimiter, address_group
from accounts.sessions import SessionStore, token_hash


async def test_a_session_is_found_by_its_token_which_redis_never_holds(redis: Redis,
                                                                       session_store: SessionStore,
                                                                       redis_prefix: str) -> None:
    token, session = await session_store.create(42)
    assert len(token) >= 43 and len(session.csrf) >= 43 and token != session.csrf
    found = await session_store.get(token)
    assert found == session
    keys = [k.decode() async for k in redis.scan_iter(f"{redis_prefix}:*")]
    assert f"{redis_prefix}:session:{token_hash(token)}" in keys
    assert not any(token in key for key in keys)
    for key in keys:
        dump = await (redis.hgetall(key) if key.startswith(f"{redis_prefix}:session:")
                      else redis.smembers(key))
        assert token.encode() not in repr(dump).encode()
    assert await session_store.get("another-token") is None
    assert await session_store.get("") is None and await session_store.touch("x" * 500) is None


async def test_a_session_ends_after_its_idle_time_unless_it_is_used(redis: Redis,
                                                                     redis_prefix: str) -> None:
    store = SessionStore(redis, redis_prefix, idle_s=0.4)
    used, _ = await store.create(1)
    idle, _ = await store.create(1)
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await store.touch(used) is not None
    assert await store.get(idle) is None
    await asyncio.sleep(0.5)
    assert await store.get(used) is None


async def test_logging_out_ends_that_session_only(session_store: SessionStore) -> None:
    first, _ = await session_store.create(1)
    second, _ = await session_store.create(1)
    assert await session_store.delete(first)
    assert not await session_store.delete(first)
    assert await session_store.get(first) is None and await session_store.get(second) is not None


async def test_all_sessions_of_a_user_end_together_and_expired_ones_are_forgotten(
        redis: Redis, redis_prefix: str) -> None:
    store = SessionStore(redis, redis_prefix, idle_s=0.2)
    await store.create(7)
    await asyncio.sleep(0.3)  # that one expired
    lasting = SessionStore(redis, redis_prefix, idle_s=60)
    tokens = [(await lasting.create(7))[0] for _ in range(3)]
    others, _ = await lasting.create(8)
    assert await redis.scard(f"{redis_prefix}:user-sessions:7") == 3
    assert await lasting.delete_all_for(7) == 3
    assert [await lasting.get(t) for t in tokens] == [None] * 3
    assert await lasting.get(others) is not None
    assert await redis.exists(f"{redis_prefix}:user-sessions:7") == 0
    assert await lasting.delete_all_for(7) == 0


async def test_five_failures_for_one_username_block_it_for_the_rest_of_the_window(
        redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=5, window_s=300)
    for n in range(5):
        assert await limiter.retry_after("Wang", f"10.0.0.{n}") is None
        await limiter.failed("Wang", f"10.0.0.{n}")  # each from another address
    wait = await limiter.retry_after("wang", "10.9.9.9")  # the same name in other case
    assert wait is not None and 295 <= wait <= 300
    assert await limiter.retry_after("li", "10.9.9.9") is None


async def test_five_failures_from_one_address_block_it_whatever_the_username(redis: Redis,
                                                                             redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=5, window_s=60)
    for n in range(5):
        await limiter.failed(f"user{n}", "192.0.2.7")
    assert await limiter.retry_after("someone", "192.0.2.7") == 60
    assert await limiter.retry_after("someone", "192.0.2.8") is None
    # A success clears the username's count, never the address's.
    await limiter.succeeded("user0")
    assert await limiter.retry_after("user0", "192.0.2.7") == 60


async def test_the_window_is_fixed_from_the_first_failure(redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=2, window_s=0.5)
    await limiter.failed("zhao", None)
    await asyncio.sleep(0.3)
    await limiter.failed("zhao", None)
    assert await limiter.retry_after("zhao", None) == 1  # whole seconds, rounded up
    await asyncio.sleep(0.3)  # 0.6 s after the first failure: the window is over
    assert await limiter.retry_after("zhao", None) is None


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() -> None:
    assert address_group("2001:db8:1:2:aaaa::1") == address_group("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_group("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_group("192.0.2.7") == "192.0.2.7"
