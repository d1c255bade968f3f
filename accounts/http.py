"""Logging in over HTTP and the CSRF check (the checks views make are in :mod:`accounts.auth`).

``install(app, ...)`` adds :func:`auth_middleware` and ``POST/GET/DELETE /api/session``.
For each request under ``/api/`` that carries the ``hotline_session`` cookie, the middleware
finds the session (pushing back its idle expiry) and the user (a disabled or deleted user
has no session any more), then:

* a request other than GET and HEAD must carry ``X-CSRF-Token`` equal to the session's
  token, else 403 ``csrf``. Exempt: the intake API (``/api/v1/intake/``), which authenticates
  by API key and never by cookie, and the login itself, which has no session yet and is
  protected otherwise: it must be JSON (a cross-site HTML form cannot send
  ``application/json``) and, when the browser says where it comes from, from our own origin;
* views then call :func:`user_of` (401 ``unauthenticated``), :func:`require` (403
  ``forbidden`` for another role) and :func:`in_scope` / :func:`require_scope`.

A request without a session is not refused here: the view's :func:`user_of` answers 401, and
views that need no user (the intake API) work as before.

WebSockets cannot send headers from a browser, so :func:`check_websocket` checks the
``Origin`` instead (it must be our own scheme and host), before the upgrade.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.auth import AUTH, SESSION, TOKEN, USER, Auth, OnLogout, same_origin, user_of
from accounts.models import User
from accounts.ratelimit import LoginLimiter, retry_after_header
from accounts.services import AccountService
from accounts.sessions import SessionStore
from core.forwarded import TRUSTED_PROXIES, client_address, trust_proxies
from core.jurisdictions import JurisdictionTree
from core.problems import Problem
from core.sealing import secret_box
from core.settings import HttpSettings, Settings
from core.web import ApiError, json_response, read_json_object

log = logging.getLogger(__name__)

COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_PATH = "/api/session"
#: Paths that authenticate otherwise than by cookie, so need no CSRF token.
CSRF_EXEMPT_PREFIXES = ("/api/v1/intake/",)
#: WebSocket close codes for a session that ended or a user who may not watch (4000-4999 are ours).
WS_CLOSE_UNAUTHENTICATED = 4401
WS_CLOSE_FORBIDDEN = 4403
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_LOGIN_BODY_LIMIT = 4 * 1024





def install(app: web.Application, *, accounts: AccountService, sessions: SessionStore,
            settings: HttpSettings | Settings, limiter: LoginLimiter | None = None,
            on_logout: OnLogout | None = None) -> None:
    """Add sessions, the CSRF check and ``/api/session`` to ``app`` (before it starts).

    ``limiter`` defaults to one on the sessions' Redis with the settings' limits;
    ``on_logout(user)`` is awaited after a user logs out (the desktop logs an agent out of the
    queues there). The client of a login is told by ``[http] trusted_proxies``."""
    http = settings.http if isinstance(settings, Settings) else settings
    if limiter is None:
        limiter = LoginLimiter.from_settings(sessions.redis, sessions.prefix, http)
    if TRUSTED_PROXIES not in app:
        trust_proxies(app, http.trusted_proxies)
    app[AUTH] = Auth(accounts, sessions, limiter, http.secure_cookies, on_logout)
    # After json_errors (build_web_app puts it first), so that our refusals are JSON too.
    app.middlewares.append(auth_middleware)
    app.router.add_post(SESSION_PATH, login)
    app.router.add_get(SESSION_PATH, current_session, allow_head=False)
    app.router.add_delete(SESSION_PATH, logout)


def setup(app: web.Application, *, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession],
          tree: JurisdictionTree, on_logout: OnLogout | None = None) -> AccountService:
    """Everything accounts need, from the settings, installed on ``app``; the account service."""
    sessions = SessionStore(redis, settings.redis.prefix, settings.http.session_idle_s)
    accounts = AccountService(db, tree, session_store=sessions, box=secret_box(settings))
    install(app, accounts=accounts, sessions=sessions, settings=settings, on_logout=on_logout)
    return accounts


# --------------------------------------------------------------------------- the middleware


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    auth = request.config_dict[AUTH]
    token = request.cookies.get(COOKIE)
    if token:
        await _resume(request, auth, token)
    if SESSION in request and _needs_csrf(request):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), request[SESSION].csrf.encode()):
            raise _csrf_error("missing" if not sent else "wrong")
    return await handler(request)


async def _resume(request: web.Request, auth: Auth, token: str) -> None:
    session = await auth.sessions.touch(token)
    if session is None:
        return
    user = await auth.accounts.get(session.user_id)
    if user is None or user.disabled:
        # Normally ended on disable; this covers a Redis that was down at that moment.
        await auth.sessions.delete(token)
        return
    request[SESSION], request[TOKEN], request[USER] = session, token, user


def _needs_csrf(request: web.Request) -> bool:
    if request.method in _SAFE_METHODS:
        return False
    if request.path.startswith(CSRF_EXEMPT_PREFIXES):
        return False
    return not (request.method == "POST" and request.path == SESSION_PATH)


def _csrf_error(what: str) -> ApiError:
    return ApiError(403, "csrf",
                    f"the {CSRF_HEADER} header is {what}: send the csrf token that login and "
                    f"GET {SESSION_PATH} return with every request that changes something",
                    f"{CSRF_HEADER} 请求头{'缺失' if what == 'missing' else '不正确'}：每个修改类请求都须带上"
                    f"登录或 GET {SESSION_PATH} 返回的 csrf 令牌")


def user_json(user: User) -> dict[str, Any]:
    """A user as the desktop and the wallboard see them (no secrets)."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
            "jurisdiction": user.jurisdiction, "agent_id": user.agent_id, "lines": list(user.lines),
            "language": user.language}


# --------------------------------------------------------------------------- /api/session


async def login(request: web.Request) -> web.Response:
    auth = request.config_dict[AUTH]
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(request, origin):
        raise ApiError(403, "csrf", f"logging in is only possible from this site's own page (Origin {origin})",
                       f"只能在本站页面登录（Origin 为 {origin}）")
    username, password = _credentials(await read_json_object(request, limit=_LOGIN_BODY_LIMIT))
    address = client_address(request)
    wait = await auth.limiter.retry_after(username, address)
    if wait is not None:
        seconds = retry_after_header(wait)
        raise ApiError(429, "rate_limited", f"too many failed logins: try again in {seconds} s",
                       f"登录失败次数过多，请 {seconds} 秒后再试", headers={"Retry-After": seconds})
    user = await auth.accounts.authenticate(username, password)
    if user is None:
        await auth.limiter.failed(username, address)
        raise ApiError(401, "bad_credentials", "wrong username or password", "用户名或密码错误")
    await auth.limiter.succeeded(username, address)
    old = request.cookies.get(COOKIE)
    if old:
        # A new token at every login: a token planted before it (session fixation) is worthless.
        await auth.sessions.delete(old)
    token, session = await auth.sessions.create(user.id)
    log.info("user %s logged in", user.username)
    response = json_response({"user": user_json(user), "csrf": session.csrf})
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=auth.secure_cookies)
    return response


def _credentials(body: dict[str, Any]) -> tuple[str, str]:
    problems = [Problem(name, "required", f"需要填写 {name}（字符串）", f"{name} is required (a string)")
                for name in ("username", "password")
                if not isinstance(body.get(name), str) or not body[name]]
    if problems:
        raise ApiError(400, "malformed", "send {\"username\": ..., \"password\": ...}",
                       "请发送 {\"username\": ..., \"password\": ...}", errors=problems)
    return body["username"], body["password"]


async def current_session(request: web.Request) -> web.Response:
    user = user_of(request)
    return json_response({"user": user_json(user), "csrf": request[SESSION].csrf})


async def logout(request: web.Request) -> web.Response:
    auth = request.config_dict[AUTH]
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=auth.secure_cookies)
    user, token = request.get(USER), request.get(TOKEN)
    if user is None or token is None:
        return response  # already logged out: nothing to end
    await auth.sessions.delete(token)
    log.info("user %s logged out", user.username)
    if auth.on_logout is not None:
        try:
            await auth.on_logout(user)
        except Exception as exc:  # noqa: BLE001 - the session is over whatever the hook did
            log.error("after user %s logged out, the logout hook failed with %s", user.username,
                      type(exc).__qualname__)
    return response
