"""Logging in and out over HTTP, the CSRF token, the login rate limit, roles, scopes and the
WebSocket origin check, on a real port (SQLite: nothing here depends on the database)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts.auth import check_websocket, require, require_scope, requires, still_logged_in, user_of
from accounts.http import COOKIE, install
from accounts.models import User
from accounts.ratelimit import LoginLimiter
from accounts.services import AccountService
from accounts.sessions import SessionStore
from core.db import sessionmaker
from core.settings import HttpSettings, IntakeSettings
from core.web import json_errors, json_response, new_web_app
from delivery.outbox import Outbox
from tests.support.accounts import PASSWORD, Users, browser, csrf_headers, login, origin_of, ws_connect
from tickets import http as tickets_http
from tickets.deadlines import official_calendar
from tickets.services import TicketService

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
USER_KEYS = {"id", "username", "display_name", "role", "jurisdiction", "agent_id", "lines", "language"}


@dataclass
class Site:
    url: str
    logged_out: list[str] = field(default_factory=list)


# Views standing in for the desktop's and the wallboard's, using the helpers as they will.

async def change_something(request: web.Request) -> web.Response:
    return json_response({"by": user_of(request).username})


async def wallboard(request: web.Request) -> web.Response:
    user = require(request, "supervisor", "admin")
    code = request.query.get("jurisdiction", user.jurisdiction)
    require_scope(user, code, request.app[TREE])
    return json_response({"node": code})


@requires("agent")
async def desktop(request: web.Request) -> web.Response:
    return json_response({"agent_id": user_of(request).agent_id})


async def socket(request: web.Request) -> web.WebSocketResponse:
    user = check_websocket(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_json({"hello": user.username, "live": await still_logged_in(request)})
    await ws.close()
    return ws


async def intake_like(request: web.Request) -> web.Response:
    return json_response({"taken": True}, status=201)


TREE = web.AppKey("tree", object)


@pytest.fixture
async def site(account_service: AccountService, session_store: SessionStore,
               login_limiter: LoginLimiter) -> AsyncIterator[Site]:
    logged_out: list[str] = []

    async def on_logout(user: User) -> None:
        logged_out.append(user.username)
        if user.username == "clumsy":
            raise RuntimeError("the queue engine is away")

    app = web.Application(middlewares=[json_errors])
    app[TREE] = account_service.tree
    install(app, accounts=account_service, sessions=session_store, settings=HttpSettings(secure_cookies=False),
            limiter=login_limiter, on_logout=on_logout)
    app.router.add_post("/api/things", change_something)
    app.router.add_get("/api/wallboard", wallboard)
    app.router.add_get("/api/desktop", desktop)
    app.router.add_get("/api/ws", socket)
    app.router.add_post("/api/v1/intake/cases", intake_like)
    async with TestServer(app) as server:
        yield Site(str(server.make_url("")).rstrip("/"), logged_out)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with browser() as session:
        yield session


async def test_logging_in_sets_a_strict_http_only_cookie_and_answers_the_user_and_csrf_token(
        site: Site, users: Users, http: aiohttp.ClientSession) -> None:
    agent = await users.agent("zhang", agent_id="1001", lines=["general"])
    async with http.post(f"{site.url}/api/session", json={"username": "Zhang", "password": PASSWORD}) as resp:
        assert resp.status == 200
        body = await resp.json()
        cookie = resp.headers["Set-Cookie"]
    assert set(body) == {"user", "csrf"} and set(body["user"]) == USER_KEYS
    assert body["user"] == {"id": agent.id, "username": "zhang", "display_name": "坐席1001", "role": "agent",
                            "jurisdiction": "330106", "agent_id": "1001", "lines": ["general"],
                            "language": "zh-CN"}
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # the test profile's plain http
    assert "sip" not in str(body) and "password" not in str(body)

    async with http.get(f"{site.url}/api/session") as resp:
        assert resp.status == 200 and await resp.json() == body


async def test_the_cookie_is_secure_unless_the_settings_say_otherwise(
        account_service: AccountService, session_store: SessionStore, users: Users) -> None:
    await users.admin()
    app = web.Application(middlewares=[json_errors])
    install(app, accounts=account_service, sessions=session_store, settings=HttpSettings())
    async with TestServer(app) as server, browser() as http:
        async with http.post(server.make_url("/api/session"), json={"username": "admin", "password": PASSWORD}) as resp:
            assert resp.status == 200 and "Secure" in resp.headers["Set-Cookie"]


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(site: Site, users: Users,
                                                                       http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    answers = []
    for username, password in (("zhang", "wrong password"), ("nobody", PASSWORD)):
        async with http.post(f"{site.url}/api/session", json={"username": username, "password": password}) as resp:
            answers.append((resp.status, await resp.json(), COOKIE in resp.cookies))
    assert answers[0] == answers[1] == (401, {"code": "bad_credentials", "message": "wrong username or password"},
                                        False)


async def test_without_a_session_every_view_answers_401(site: Site, http: aiohttp.ClientSession) -> None:
    for method, path in (("GET", "/api/session"), ("POST", "/api/things"), ("GET", "/api/wallboard")):
        async with http.request(method, f"{site.url}{path}", headers={"Accept-Language": "zh"}) as resp:
            assert resp.status == 401
            assert await resp.json() == {"code": "unauthenticated", "message": "未登录或会话已结束，请重新登录"}
    http.cookie_jar.update_cookies({COOKIE: "made-up"})
    async with http.get(f"{site.url}/api/session") as resp:
        assert resp.status == 401


async def test_a_change_without_the_right_csrf_token_is_refused_with_403(site: Site, users: Users,
                                                                         http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    csrf = await login(http, site.url, "zhang")
    async with http.post(f"{site.url}/api/things") as resp:
        assert resp.status == 403 and (await resp.json())["code"] == "csrf"
        assert "X-CSRF-Token header is missing" in (await resp.json())["message"]
    async with http.post(f"{site.url}/api/things", headers=csrf_headers(csrf[::-1])) as resp:
        assert resp.status == 403 and "is wrong" in (await resp.json())["message"]
    async with http.delete(f"{site.url}/api/session") as resp:
        assert resp.status == 403  # logging out is a change too
    async with http.post(f"{site.url}/api/things", headers=csrf_headers(csrf)) as resp:
        assert resp.status == 200 and await resp.json() == {"by": "zhang"}


async def test_the_intake_api_needs_no_csrf_token_it_authenticates_by_api_key(
        engine: AsyncEngine, account_service: AccountService, session_store: SessionStore, users: Users,
        http: aiohttp.ClientSession) -> None:
    tickets = TicketService(sessionmaker(engine), Outbox(engine), calendar=official_calendar())
    intake = IntakeSettings(api_key_sha256={"web": hashlib.sha256(b"web-key-0123456789").hexdigest()})
    app = with_intake(tickets, intake)
    install(app, accounts=account_service, sessions=session_store, settings=HttpSettings(secure_cookies=False))
    await users.agent("zhang")
    async with TestServer(app) as server:
        url = str(server.make_url("")).rstrip("/")
        await login(http, url, "zhang")  # the cookie goes along, as a browser's would
        async with http.post(f"{url}/api/v1/intake/cases", json={}) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == "unauthorized"  # the intake's own check
        async with http.get(f"{url}/api/openapi.yaml") as resp:
            assert resp.status == 200


async def test_the_login_itself_must_be_json_from_our_own_origin(site: Site, users: Users,
                                                                 http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    # What a cross-site HTML form can send: refused before any password is looked at.
    async with http.post(f"{site.url}/api/session", data={"username": "zhang", "password": PASSWORD}) as resp:
        assert resp.status == 400 and "application/json" in (await resp.json())["message"]
    async with http.post(f"{site.url}/api/session", json={"username": "zhang", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403 and (await resp.json())["code"] == "csrf"
    async with http.post(f"{site.url}/api/session", json={"username": "zhang"}) as resp:
        body = await resp.json()
        assert resp.status == 400 and [e["field"] for e in body["errors"]] == ["password"]
    async with http.post(f"{site.url}/api/session", json={"username": "zhang", "password": PASSWORD},
                         headers={"Origin": origin_of(site.url)}) as resp:
        assert resp.status == 200
    async with http.post(f"{site.url}/api/v1/intake/cases") as resp:
        assert resp.status == 201  # exempt: the intake API never relies on the cookie


async def test_after_five_failures_even_the_right_password_waits_with_429_and_retry_after(
        site: Site, users: Users, http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    await users.agent("wang")
    for _ in range(5):
        async with http.post(f"{site.url}/api/session", json={"username": "zhang", "password": "guess guess"}) as resp:
            assert resp.status == 401
    async with http.post(f"{site.url}/api/session", json={"username": "zhang", "password": PASSWORD}) as resp:
        assert resp.status == 429
        assert (await resp.json())["code"] == "rate_limited"
        assert 55 <= int(resp.headers["Retry-After"]) <= 60  # the first delay of the fixture's limiter
    # Another user at the same address (all are at 127.0.0.1 here) is not slowed by it.
    async with http.post(f"{site.url}/api/session", json={"username": "wang", "password": PASSWORD}) as resp:
        assert resp.status == 200


async def test_logging_out_ends_the_session_clears_the_cookie_and_tells_the_desktop(
        site: Site, users: Users, http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    csrf = await login(http, site.url, "zhang")
    async with http.delete(f"{site.url}/api/session", headers=csrf_headers(csrf)) as resp:
        assert resp.status == 204
        assert resp.cookies[COOKIE].value == "" and resp.cookies[COOKIE]["max-age"] == "0"
    assert site.logged_out == ["zhang"]
    async with http.get(f"{site.url}/api/session") as resp:
        assert resp.status == 401
    async with http.delete(f"{site.url}/api/session") as resp:
        assert resp.status == 204  # logged out already: nothing to do


async def test_a_failing_logout_hook_does_not_keep_the_session(site: Site, users: Users,
                                                               http: aiohttp.ClientSession) -> None:
    await users.agent("clumsy")
    csrf = await login(http, site.url, "clumsy")
    async with http.delete(f"{site.url}/api/session", headers=csrf_headers(csrf)) as resp:
        assert resp.status == 204
    assert site.logged_out == ["clumsy"]
    async with http.get(f"{site.url}/api/session") as resp:
        assert resp.status == 401


async def test_a_new_login_replaces_the_session_the_browser_had(site: Site, users: Users,
                                                                http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    await login(http, site.url, "zhang")
    old = next(c.value for c in http.cookie_jar if c.key == COOKIE)
    await login(http, site.url, "zhang")
    async with browser() as other:
        other.cookie_jar.update_cookies({COOKIE: old}, response_url=aiohttp.client.URL(site.url))
        async with other.get(f"{site.url}/api/session") as resp:
            assert resp.status == 401


async def test_a_disabled_user_is_out_at_their_next_request(site: Site, users: Users,
                                                            account_service: AccountService,
                                                            http: aiohttp.ClientSession) -> None:
    await users.agent("zhang")
    await login(http, site.url, "zhang")
    await account_service.disable("zhang")
    async with http.get(f"{site.url}/api/session") as resp:
        assert resp.status == 401


async def test_views_are_for_their_roles_and_scopes_only(site: Site, users: Users) -> None:
    await users.agent("zhang", agent_id="1001")
    await users.supervisor("chen", jurisdiction="330000")
    await users.admin("root")
    async with browser() as agent, browser() as supervisor, browser() as admin:
        for client, name in ((agent, "zhang"), (supervisor, "chen"), (admin, "root")):
            await login(client, site.url, name)
        async with agent.get(f"{site.url}/api/wallboard") as resp:
            assert resp.status == 403
            assert await resp.json() == {"code": "forbidden", "message": "this is for the role supervisor or admin; "
                                                                         "you are logged in as agent"}
        async with agent.get(f"{site.url}/api/desktop") as resp:
            assert resp.status == 200 and await resp.json() == {"agent_id": "1001"}
        async with supervisor.get(f"{site.url}/api/desktop") as resp:
            assert resp.status == 403
        for code, status in (("330000", 200), ("330106-01", 200), ("110100", 403)):
            async with supervisor.get(f"{site.url}/api/wallboard", params={"jurisdiction": code}) as resp:
                assert resp.status == status, code
        async with admin.get(f"{site.url}/api/wallboard", params={"jurisdiction": "110100"}) as resp:
            assert resp.status == 200


async def test_a_websocket_opens_only_from_our_own_origin_with_a_live_session(site: Site, users: Users,
                                                                              http: aiohttp.ClientSession) -> None:
    await users.supervisor("chen")
    async with browser() as stranger:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            async with ws_connect(stranger, site.url, "/api/ws"):
                pass
        assert caught.value.status == 401
    await login(http, site.url, "chen")
    async with ws_connect(http, site.url, "/api/ws") as ws:
        assert await ws.receive_json() == {"hello": "chen", "live": True}
    for origin in ("https://evil.example", site.url.replace("127.0.0.1", "localhost"),
                   site.url.replace("http://", "https://"), None):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            async with http.ws_connect(f"{site.url}/api/ws", origin=origin):
                pass
        assert caught.value.status == 403, origin


def with_intake(tickets: TicketService, intake: IntakeSettings) -> web.Application:
    app = new_web_app()
    tickets_http.add_routes(app, tickets=tickets, intake=intake)
    return app
