"""Every endpoint of the desktop and the wallboard, tried as nobody, as the wrong role and from
the wrong jurisdiction. The list of endpoints is read from the running application's router,
so an endpoint added later is tried too, without anyone remembering to add it here."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from core.settings import Settings
from hotline.app import Application
from tests.fixtures.app import running
from tests.support.accounts import PASSWORD, browser, login, origin_of

pytestmark = pytest.mark.slow

#: A value for each path parameter: ids that exist nowhere (the refusal must come before the lookup).
PARAMS = {"id": "00000000-0000-4000-8000-000000000000"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Application]:
    async with running(settings) as app:
        add = app.accounts.add_user
        await add(username="agent1", password=PASSWORD, role="agent", jurisdiction="330100", display_name="a",
                  agent_id="1001", sip_endpoint="PJSIP/1001", sip_password="s-1001", lines=["general"])
        await add(username="zhejiang", password=PASSWORD, role="supervisor", jurisdiction="330000", display_name="z")
        await add(username="beijing", password=PASSWORD, role="supervisor", jurisdiction="110000", display_name="b")
        yield app


def endpoints(app: Application, prefix: str) -> list[tuple[str, str]]:
    """(method, concrete path) of every route under ``prefix``."""
    assert app._web is not None
    web_app: web.Application = app._web.app
    found = []
    for route in web_app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path") or ""
        if not template.startswith(prefix) or route.method == "HEAD":
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: PARAMS.get(m.group(1), "x"), template)
        found.append((route.method, path))
    assert found, f"no routes under {prefix}"
    return sorted(set(found))


async def status_as(http: aiohttp.ClientSession, app: Application, method: str, path: str, csrf: str = "") -> int:
    url = f"{app.web_url}{path}"
    if path.endswith("/ws"):
        try:
            async with http.ws_connect(url, origin=origin_of(app.web_url)) as ws:
                message = await ws.receive(timeout=5)
                return ws.close_code or (message.data if isinstance(message.data, int) else 101)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
    async with http.request(method, url, json={}, headers={"X-CSRF-Token": csrf} if csrf else {}) as resp:
        return resp.status


async def test_nobody_logged_in_gets_401_from_every_desktop_and_wallboard_endpoint(app: Application) -> None:
    async with browser() as http:
        for method, path in endpoints(app, "/api/desktop") + endpoints(app, "/api/wallboard"):
            assert await status_as(http, app, method, path) in (401, 4401), f"{method} {path}"


async def test_a_supervisor_is_refused_every_desktop_endpoint(app: Application) -> None:
    async with browser() as http:
        csrf = await login(http, app.web_url, "zhejiang")
        for method, path in endpoints(app, "/api/desktop"):
            assert await status_as(http, app, method, path, csrf) in (403, 4403), f"{method} {path}"


async def test_an_agent_is_refused_every_wallboard_endpoint(app: Application) -> None:
    async with browser() as http:
        csrf = await login(http, app.web_url, "agent1")
        for method, path in endpoints(app, "/api/wallboard"):
            assert await status_as(http, app, method, path, csrf) in (403, 4403), f"{method} {path}"


async def test_a_supervisor_of_beijing_cannot_see_zhejiang_nor_below(app: Application) -> None:
    async with browser() as http:
        csrf = await login(http, app.web_url, "beijing")
        for code in ("330000", "330100", "330106"):
            assert await status_as(http, app, "GET", f"/api/wallboard?jurisdiction={code}", csrf) == 403
            assert await status_as(http, app, "GET", f"/api/wallboard/ws?jurisdiction={code}", csrf) in (403, 4403)
        assert await status_as(http, app, "GET", "/api/wallboard?jurisdiction=110000", csrf) == 200


async def test_without_the_csrf_token_no_change_is_accepted(app: Application) -> None:
    async with browser() as http:
        await login(http, app.web_url, "agent1")
        changes = [(m, p) for m, p in endpoints(app, "/api/desktop") if m in ("POST", "PATCH", "DELETE", "PUT")]
        assert changes, "no endpoint that changes anything was found under /api/desktop"
        for method, path in changes:
            assert await status_as(http, app, method, path) == 403, f"{method} {path}"
