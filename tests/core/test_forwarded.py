"""The client's address: the peer's, unless the peer is one of our trusted proxies; then the
rightmost address of ``X-Forwarded-For`` that is not one of them (what a client writes to
the left of it is never believed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.forwarded import client_address, trust_proxies
from core.settings import load_settings

Ask = Callable[..., Awaitable[str]]


async def whoami(request: web.Request) -> web.Response:
    return web.Response(text=client_address(request) or "-")


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Ask]:
    """A server trusting the proxies the test names (``indirect``); the test client connects from 127.0.0.1."""
    app = web.Application()
    if request.param:
        trust_proxies(app, request.param)
    app.router.add_get("/", whoami)
    async with TestServer(app) as srv, aiohttp.ClientSession() as http:

        async def ask(*forwarded: str) -> str:
            async with http.get(srv.make_url("/"), headers=[("X-Forwarded-For", v) for v in forwarded]) as resp:
                return await resp.text()

        yield ask


@pytest.mark.parametrize("server", [["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"]], indirect=True)
async def test_the_client_is_the_rightmost_address_that_is_not_one_of_our_proxies(server: Ask) -> None:
    ask = server  # the test client plays our last proxy
    assert await ask() == "127.0.0.1"  # no header: the peer
    assert await ask("203.0.113.5") == "203.0.113.5"
    assert await ask("203.0.113.5, 10.0.0.2") == "203.0.113.5"  # through two of ours
    assert await ask("198.51.100.1, 203.0.113.5, 10.0.0.2") == "203.0.113.5"  # the left is the client's say
    assert await ask("198.51.100.1", "203.0.113.5") == "203.0.113.5"  # several headers, in order
    assert await ask("not-an-address, 203.0.113.5") == "203.0.113.5"
    assert await ask("10.0.0.9, 10.0.0.2") == "10.0.0.9"  # all ours: the farthest
    assert await ask("203.0.113.5, garbage") == "127.0.0.1"  # our proxy writes no garbage: stop there
    assert await ask("2001:db8::7, 2001:db9::1") == "2001:db9::1"


@pytest.mark.parametrize("server", [[], ["192.0.2.0/24"]], indirect=True)
async def test_a_client_that_is_not_our_proxy_cannot_claim_an_address(server: Ask) -> None:
    assert await server("203.0.113.5") == "127.0.0.1"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert load_settings(http={"trusted_proxies": [" 10.0.0.0/8", "::1"]}).http.trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValueError, match="trusted_proxies are addresses or CIDRs"):
        load_settings(http={"trusted_proxies": ["proxy.example"]})
