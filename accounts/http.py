"""Logging in over HTTP, the CSRF check, and who may do what: the helpers every desktop and
wallboard view uses.

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

import functools
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.models import Role, User
from accounts.ratelimit import LoginLimiter
from accounts.services import AccountService
from accounts.sessions import Session, SessionStore
from core.jurisdictions import JurisdictionTree, UnknownJurisdiction
from core.problems import Problem
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
_STATION = re.compile(r"\d{6}-\d{2}")

OnLogout = Callable[[User], Awaitable[None]]


@dataclass(frozen=True)
class _Auth:
    accounts: AccountService
    sessions: SessionStore
    limiter: LoginLimiter
    secure_cookies: bool
    on_logout: OnLogout | None


_AUTH = web.AppKey("accounts_auth", _Auth)
_SESSION = web.RequestKey("accounts_session", Session)
_TOKEN = web.RequestKey("accounts_token", str)
_USER = web.RequestKey("accounts_user", User)


def install(app: web.Application, *, accounts: AccountService, sessions: SessionStore,
            settings: HttpSettings | Settings, limiter: LoginLimiter | None = None,
            on_logout: OnLogout | None = None) -> None:
    """Add sessions, the CSRF check and ``/api/session`` to ``app`` (before it starts).

    ``limiter`` defaults to one on the sessions' Redis with the settings' attempts and
    window; ``on_logout(user)`` is awaited after a user logs out (the desktop logs an agent
    out of the queues there)."""
    http = settings.http if isinstance(settings, Settings) else settings
    if limiter is None:
        limiter = LoginLimiter(sessions.redis, sessions.prefix, attempts=http.login_attempts,
                               window_s=http.login_window_s)
    app[_AUTH] = _Auth(accounts, sessions, limiter, http.secure_cookies, on_logout)
    # After json_errors (build_web_app puts it first), so that our refusals are JSON too.
    app.middlewares.append(auth_middleware)
    app.router.add_post(SESSION_PATH, login)
    app.router.add_get(SESSION_PATH, current_session, allow_head=False)
    app.router.add_delete(SESSION_PATH, logout)


def setup(app: web.Application, *, settings: Settings, redis: Redis, db: async_sessionmaker[AsyncSession],
          tree: JurisdictionTree, on_logout: OnLogout | None = None) -> AccountService:
    """Everything accounts need, from the settings, installed on ``app``; the account service."""
    sessions = SessionStore(redis, settings.redis.prefix, settings.http.session_idle_s)
    accounts = AccountService(db, tree, session_store=sessions)
    install(app, accounts=accounts, sessions=sessions, settings=settings, on_logout=on_logout)
    return accounts


# --------------------------------------------------------------------------- the middleware


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    auth = request.config_dict[_AUTH]
    token = request.cookies.get(COOKIE)
    if token:
        await _resume(request, auth, token)
    if _SESSION in request and _needs_csrf(request):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), request[_SESSION].csrf.encode()):
            raise _csrf_error("missing" if not sent else "wrong")
    return await handler(request)


async def _resume(request: web.Request, auth: _Auth, token: str) -> None:
    session = await auth.sessions.touch(token)
    if session is None:
        return
    user = await auth.accounts.get(session.user_id)
    if user is None or user.disabled:
        # Normally ended on disable; this covers a Redis that was down at that moment.
        await auth.sessions.delete(token)
        return
    request[_SESSION], request[_TOKEN], request[_USER] = session, token, user


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


# --------------------------------------------------------------------------- the helpers for views


def user_of(request: web.Request) -> User:
    """The logged-in user of ``request``, or the 401 ``unauthenticated`` refusal."""
    # ``in`` and ``[]`` rather than ``get``: only ``[]`` knows the RequestKey's type.
    if _USER not in request:
        raise ApiError(401, "unauthenticated", "you are not logged in, or your session has ended: log in again",
                       "未登录或会话已结束，请重新登录")
    return request[_USER]


def require(request: web.Request, *roles: str) -> User:
    """The logged-in user when their role is one of ``roles`` (any role when none are given);
    else 401 ``unauthenticated`` or 403 ``forbidden``."""
    user = user_of(request)
    if roles and user.role not in roles:
        wanted = " or ".join(roles)
        raise ApiError(403, "forbidden", f"this is for the role {wanted}; you are logged in as {user.role}",
                       f"此功能仅限角色 {wanted}；您的角色是 {user.role}")
    return user


def requires(*roles: str) -> Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]],
                                      Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """A view decorator: :func:`require` before the view runs."""

    def decorate(view: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(view)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            require(request, *roles)
            return await view(request)

        return wrapped

    return decorate


def in_scope(user: User, code: str, tree: JurisdictionTree | None = None) -> bool:
    """Whether ``user`` may see jurisdiction ``code``: an admin everything, a supervisor
    their jurisdiction's whole subtree, an agent their own home only.

    ``tree`` defaults to the shipped divisions: stations need no stations file here, since a
    station (``<county>-<nn>``) always hangs under the county its code names."""
    if user.role == Role.ADMIN:
        return True
    if not isinstance(code, str):
        return False
    if code == user.jurisdiction:
        return True
    if user.role != Role.SUPERVISOR:
        return False
    tree = tree or _shipped_tree()
    try:
        if code not in tree and _STATION.fullmatch(code):
            # A station this tree was not told about: it hangs under the county its code names.
            county = code.split("-", 1)[0]
            return county == user.jurisdiction or tree.is_within(county, user.jurisdiction)
        return tree.is_within(code, user.jurisdiction)
    except UnknownJurisdiction:
        return False


def require_scope(user: User, code: str, tree: JurisdictionTree | None = None) -> None:
    """:func:`in_scope` or the 403 ``forbidden`` refusal."""
    if not in_scope(user, code, tree):
        raise ApiError(403, "forbidden", f"jurisdiction {code} is outside your scope ({user.jurisdiction})",
                       f"辖区 {code} 不在您的权限范围（{user.jurisdiction}）内")


def check_websocket(request: web.Request) -> User:
    """Before upgrading to a WebSocket: the user, when the ``Origin`` is our own and the
    cookie's session is live; else 403 ``csrf`` or 401 ``unauthenticated`` (as HTTP, before
    the upgrade). ``SameSite=Strict`` keeps other sites' pages from sending our cookie, but
    not pages of another origin on the same site (another port, a sibling subdomain), and
    a browser sends no CSRF header on a WebSocket: only the ``Origin`` tells."""
    origin = request.headers.get("Origin")
    if origin is None or not same_origin(request, origin):
        raise ApiError(403, "csrf",
                       f"a WebSocket must be opened from this site's own pages (Origin {origin or 'missing'})",
                       f"WebSocket 只能由本站页面打开（Origin 为 {origin or '空'}）")
    return user_of(request)


async def still_logged_in(request: web.Request) -> bool:
    """For long WebSockets: whether the session that opened it is still live (it ends on
    logout, disable, password change, or idleness), pushing back its idle expiry."""
    token = request.get(_TOKEN)
    if token is None:
        return False
    return await request.config_dict[_AUTH].sessions.touch(token) is not None


def same_origin(request: web.Request, origin: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) is the request's own. Behind a proxy that
    ends TLS, the scheme is the one it reports in ``X-Forwarded-Proto``."""
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc or parts.path not in ("", "/"):
        return False
    schemes = {request.scheme}
    forwarded = request.headers.get("X-Forwarded-Proto")
    if forwarded:
        schemes.add(forwarded.split(",")[0].strip().lower())
    return parts.scheme.lower() in schemes and _host_port(parts.netloc, parts.scheme) == _host_port(
        request.host, parts.scheme)


def _host_port(netloc: str, scheme: str) -> str:
    default = {"http": "80", "https": "443"}.get(scheme.lower(), "")
    host, sep, port = netloc.lower().rpartition(":")
    if not sep or "]" in port:  # no port (or the tail of an IPv6 literal)
        return f"{netloc.lower()}:{default}"
    return f"{host}:{port}"


@functools.cache
def _shipped_tree() -> JurisdictionTree:
    return JurisdictionTree.load()


def user_json(user: User) -> dict[str, Any]:
    """A user as the desktop and the wallboard see them (no secrets)."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
            "jurisdiction": user.jurisdiction, "agent_id": user.agent_id, "lines": list(user.lines),
            "language": user.language}


# --------------------------------------------------------------------------- /api/session


async def login(request: web.Request) -> web.Response:
    auth = request.config_dict[_AUTH]
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(request, origin):
        raise ApiError(403, "csrf", f"logging in is only possible from this site's own page (Origin {origin})",
                       f"只能在本站页面登录（Origin 为 {origin}）")
    username, password = _credentials(await read_json_object(request, limit=_LOGIN_BODY_LIMIT))
    address = request.remote
    wait = await auth.limiter.retry_after(username, address)
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many failed logins: try again in {wait} s",
                       f"登录失败次数过多，请 {wait} 秒后再试", headers={"Retry-After": str(wait)})
    user = await auth.accounts.authenticate(username, password)
    if user is None:
        await auth.limiter.failed(username, address)
        raise ApiError(401, "bad_credentials", "wrong username or password", "用户名或密码错误")
    await auth.limiter.succeeded(username)
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
    return json_response({"user": user_json(user), "csrf": request[_SESSION].csrf})


async def logout(request: web.Request) -> web.Response:
    auth = request.config_dict[_AUTH]
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=auth.secure_cookies)
    user, token = request.get(_USER), request.get(_TOKEN)
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
