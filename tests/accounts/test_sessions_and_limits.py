"""Sessions live in Redis under the token's hash and slide while used; failed logins slow down
the guesser (per username and address, doubling waits), never lock the user out."""

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


async def test_failures_for_one_username_at_one_address_make_that_pair_wait_doubling(
        redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=3, delay_s=10, delay_max_s=35, window_s=300)
    for _ in range(2):
        await limiter.failed("Wang", "10.0.0.1")
    assert await limiter.retry_after("wang", "10.0.0.1") is None  # free tries left
    waits = []
    for _ in range(4):
        await limiter.failed("Wang", "10.0.0.1")
        waits.append(await limiter.retry_after("WANG", "10.0.0.1"))  # the same name in other case
    assert [round(w or 0) for w in waits] == [10, 20, 35, 35]  # doubling, up to the cap
    # Nobody else is slowed: not the user from elsewhere, not the others at that address.
    assert await limiter.retry_after("wang", "10.0.0.2") is None
    assert await limiter.retry_after("li", "10.0.0.1") is None


async def test_a_wait_ends_and_a_success_forgets_the_pairs_failures(redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=1, delay_s=0.3, delay_max_s=5, window_s=60)
    await limiter.failed("zhao", "192.0.2.7")
    assert await limiter.retry_after("zhao", "192.0.2.7") is not None
    await asyncio.sleep(0.4)
    assert await limiter.retry_after("zhao", "192.0.2.7") is None  # delayed, not locked out
    await limiter.succeeded("zhao", "192.0.2.7")
    await limiter.failed("zhao", "192.0.2.7")
    wait = await limiter.retry_after("zhao", "192.0.2.7")
    assert wait is not None and wait <= 0.3  # back to the first delay


async def test_guessing_one_account_from_many_addresses_slows_only_addresses_it_never_used(
        redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=100, user_attempts=5, delay_s=30, window_s=300)
    await limiter.succeeded("chen", "198.51.100.20")  # chen's desk
    for n in range(5):
        await limiter.failed("chen", f"203.0.113.{n}")
    assert await limiter.retry_after("chen", "203.0.113.99") is not None  # a new address waits
    assert await limiter.retry_after("chen", "198.51.100.20") is None  # chen at their desk does not
    # Failures from the desk's address do not count against chen's unknown addresses.
    fresh = LoginLimiter(redis, f"{redis_prefix}:b", attempts=100, user_attempts=2, delay_s=30)
    await fresh.succeeded("chen", "198.51.100.20")
    for _ in range(5):
        await fresh.failed("chen", "198.51.100.20")
    assert await fresh.retry_after("chen", "203.0.113.1") is None


async def test_one_address_failing_on_many_accounts_meets_the_coarse_ceiling(redis: Redis,
                                                                             redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, address_failures=30, address_window_s=60)
    for n in range(30):
        await limiter.failed(f"user{n}", "192.0.2.9")
    wait = await limiter.retry_after("someone", "192.0.2.9")
    assert wait is not None and 59 <= wait <= 60
    assert await limiter.retry_after("someone", "192.0.2.10") is None
    await limiter.succeeded("user0", "192.0.2.9")  # a success never resets the address's count
    assert await limiter.retry_after("user0", "192.0.2.9") is not None
    assert [(lock.kind, lock.address) for lock in await limiter.lockouts()] == [("address", "192.0.2.9")]
    assert await limiter.unlock_address("192.0.2.9") == 1
    assert await limiter.retry_after("someone", "192.0.2.9") is None


async def test_operators_see_who_waits_and_where_and_clear_it(redis: Redis, redis_prefix: str) -> None:
    limiter = LoginLimiter(redis, redis_prefix, attempts=2, user_attempts=50, delay_s=60)
    for _ in range(3):
        await limiter.failed("Sun", "192.0.2.1")
    await limiter.failed("zhou", "192.0.2.1")  # one failure: not waiting
    [lock] = await limiter.lockouts()
    assert (lock.kind, lock.username, lock.address, lock.failures) == ("user at address", "sun", "192.0.2.1", 3)
    assert 100 < lock.wait_s <= 120
    keys = [k.decode() async for k in redis.scan_iter(f"{redis_prefix}:login:*")]
    assert keys and not any("sun" in k or "192.0.2.1" in k for k in keys)  # keys are hashes
    assert await limiter.unlock("SUN") == 2  # the pair's counter and the username's
    assert await limiter.lockouts() == [] and await limiter.retry_after("sun", "192.0.2.1") is None
    assert await limiter.unlock("sun") == 0


def test_an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() -> None:
    assert address_group("2001:db8:1:2:aaaa::1") == address_group("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_group("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_group("192.0.2.7") == "192.0.2.7"
