"""Users and logging them in, for the tests of accounts, the desktop, the wallboard and
recordings (the accounts fixtures are in ``tests/accounts/conftest.py``)."""

from __future__ import annotations

from itertools import count
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from accounts.models import User
from accounts.passwords import Passwords
from accounts.services import AccountService

#: Every factory user's password unless told otherwise.
PASSWORD = "correct horse battery"


def cheap_passwords() -> Passwords:
    """argon2id with the smallest parameters: the same code path, milliseconds per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1), max_concurrent=4)


class Users:
    """Makes users of each role with sensible defaults; every default can be overridden."""

    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts
        self._numbers = count(1001)

    async def agent(self, username: str | None = None, *, jurisdiction: str = "330106",
                    password: str = PASSWORD, **fields: Any) -> User:
        """An agent at 西湖区 (by default) with agent id and endpoint ``PJSIP/<n>`` from 1001 on."""
        number = next(self._numbers)
        fields.setdefault("agent_id", str(number))
        fields.setdefault("sip_endpoint", f"PJSIP/{fields['agent_id']}")
        fields.setdefault("sip_password", f"sip-secret-{fields['agent_id']}")
        fields.setdefault("display_name", f"坐席{fields['agent_id']}")
        return await self.accounts.add_user(username=username or f"agent{fields['agent_id']}", role="agent",
                                            jurisdiction=jurisdiction, password=password, **fields)

    async def supervisor(self, username: str = "supervisor", *, jurisdiction: str = "330000",
                         password: str = PASSWORD, **fields: Any) -> User:
        """A supervisor of 浙江省 (by default)."""
        fields.setdefault("display_name", "值班长")
        return await self.accounts.add_user(username=username, role="supervisor", jurisdiction=jurisdiction,
                                            password=password, **fields)

    async def admin(self, username: str = "admin", *, jurisdiction: str = "000000",
                    password: str = PASSWORD, **fields: Any) -> User:
        fields.setdefault("display_name", "管理员")
        return await self.accounts.add_user(username=username, role="admin", jurisdiction=jurisdiction,
                                            password=password, **fields)


def browser() -> aiohttp.ClientSession:
    """A client session as a browser: it keeps cookies from ``http://127.0.0.1`` (aiohttp's
    default jar ignores cookies of IP addresses)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(client_session: aiohttp.ClientSession | TestClient, base_url: str, username: str,
                password: str = PASSWORD) -> str:
    """Log in as ``username``; the session's CSRF token (for :func:`csrf_headers`).
    ``base_url`` is ``""`` with aiohttp's ``TestClient``."""
    async with client_session.post(f"{base_url}/api/session",
                                   json={"username": username, "password": password}) as resp:
        body = await resp.text()
        assert resp.status == 200, f"login as {username} answered {resp.status}: {body}"
        assert "hotline_session" in resp.cookies, "no session cookie was set"
        csrf: str = (await resp.json())["csrf"]
    session = client_session if isinstance(client_session, aiohttp.ClientSession) else client_session.session
    jar = session.cookie_jar
    assert any(c.key == "hotline_session" for c in jar), (
        "the client did not keep the session cookie: use tests.support.accounts.browser() "
        "(a cookie jar with unsafe=True) for http://127.0.0.1")
    return csrf


def csrf_headers(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf}


def origin_of(base_url: str) -> str:
    """The ``Origin`` a page served from ``base_url`` sends."""
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def ws_connect(client_session: aiohttp.ClientSession, base_url: str, path: str,
               **kwargs: Any) -> Any:
    """Open a WebSocket as our own page would (with our ``Origin``); use with ``async with``."""
    return client_session.ws_connect(f"{base_url}{path}", origin=origin_of(base_url), **kwargs)
