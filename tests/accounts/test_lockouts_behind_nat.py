"""A call centre behind one NAT, reached through our TLS proxy: every agent logs in from the
same address. One of them guesses a colleague's password. The others still log in at 8:00,
the colleague is delayed for a while at that address only, never locked out for good; the
client's address comes from ``X-Forwarded-For`` only when the proxy is one we trust."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from accounts.http import install
from accounts.ratelimit import LoginLimiter
from accounts.services import AccountService
from accounts.sessions import SessionStore
from core.settings import HttpSettings
from core.web import json_errors
from tests.support.accounts import PASSWORD, Users

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CENTRE = "203.0.113.50"  # the centre's NAT, as our proxy sees it
HOME = "198.51.100.7"
AGENTS = 200


@pytest.fixture
def limiter(redis: Redis, redis_prefix: str) -> LoginLimiter:
    # The production defaults but short waits, so that the test sees one end.
    http = HttpSettings(login_delay_s=0.5, login_delay_max_s=1.0)
    return LoginLimiter.from_settings(redis, redis_prefix, http)


@pytest.fixture
async def site(account_service: AccountService, session_store: SessionStore,
               limiter: LoginLimiter) -> AsyncIterator[str]:
    app = web.Application(middlewares=[json_errors])
    # Our proxy runs on this machine: the test client connects from 127.0.0.1, as it would.
    install(app, accounts=account_service, sessions=session_store, limiter=limiter,
            settings=HttpSettings(secure_cookies=False, trusted_proxies=["127.0.0.0/8"]))
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def attempt(http: aiohttp.ClientSession, url: str, username: str, password: str,
                  via: str = CENTRE) -> tuple[int, str | None]:
    async with http.post(f"{url}/api/session", json={"username": username, "password": password},
                         headers={"X-Forwarded-For": f"10.1.2.3, {via}"}) as resp:
        return resp.status, resp.headers.get("Retry-After")


async def test_one_guesser_behind_the_centres_nat_slows_only_the_victim_there_and_only_for_a_while(
        site: str, users: Users, limiter: LoginLimiter) -> None:
    names = [f"agent{n:03d}" for n in range(AGENTS)]
    for start in range(0, AGENTS, 20):
        await asyncio.gather(*(users.agent(name) for name in names[start:start + 20]))
    victim = names[0]
    async with aiohttp.ClientSession() as http:
        assert await attempt(http, site, victim, PASSWORD) == (200, None)  # yesterday, at the centre

        # The guesser, from the centre: a few tries, then made to wait.
        answers = [await attempt(http, site, victim, f"guess number {n}") for n in range(6)]
        assert [status for status, _ in answers[:5]] == [401] * 5
        assert answers[5][0] == 429

        async def guess_on() -> None:
            while True:  # whenever allowed: each wrong guess renews the wait
                await attempt(http, site, victim, "guess again")
                await asyncio.sleep(0.05)

        guesser = asyncio.create_task(guess_on())
        # 8:00: everyone else logs in from the same address meanwhile, some after a typo.
        sem = asyncio.Semaphore(20)

        async def morning(name: str, typo: bool) -> int:
            async with sem:
                if typo:
                    assert (await attempt(http, site, name, "fat fingers!"))[0] == 401
                return (await attempt(http, site, name, PASSWORD))[0]

        try:
            statuses = await asyncio.gather(*(morning(name, n % 3 == 0) for n, name in enumerate(names[1:])))
        finally:
            guesser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guesser
        assert statuses == [200] * (AGENTS - 1)

        # The guesser's last wrong guess...
        for _ in range(100):  # it waits for the end of the current wait (a second at most)
            if (await attempt(http, site, victim, "one more guess"))[0] == 401:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the guesser was never let in again")
        # ... delays the victim at the centre, not elsewhere...
        status, retry_after = await attempt(http, site, victim, PASSWORD)
        assert status == 429 and retry_after == "1"
        assert await attempt(http, site, victim, PASSWORD, via=HOME) == (200, None)
        # ... and not for good: after the wait the right password works at the centre too.
        await asyncio.sleep(1.1)
        assert await attempt(http, site, victim, PASSWORD) == (200, None)
    assert [lock for lock in await limiter.lockouts() if lock.kind == "address"] == []


async def test_a_forwarded_address_from_a_client_we_do_not_trust_is_ignored(
        account_service: AccountService, session_store: SessionStore, limiter: LoginLimiter,
        users: Users) -> None:
    await users.agent("li")
    app = web.Application(middlewares=[json_errors])
    install(app, accounts=account_service, sessions=session_store, limiter=limiter,
            settings=HttpSettings(secure_cookies=False, trusted_proxies=["192.0.2.0/24"]))
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("")).rstrip("/")
        for n in range(6):  # each claims another address: all count as 127.0.0.1's
            await attempt(http, url, "li", "not the password", via=f"198.51.100.{n}")
        [lock] = [lock for lock in await limiter.lockouts() if lock.kind == "user at address"]
        assert (lock.username, lock.address) == ("li", "127.0.0.1")
