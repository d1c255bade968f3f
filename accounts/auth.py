"""Who may do what: the checks every view of the desktop, the wallboard and the recordings
makes (:func:`user_of`, :func:`require`, :func:`in_scope`, :func:`check_websocket`), on what
:mod:`accounts.http`'s middleware found for the request. Other features' views use this module,
never :mod:`accounts.http`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from accounts.models import Role, User
from accounts.ratelimit import LoginLimiter
from accounts.services import AccountService
from accounts.sessions import Session, SessionStore
from core.jurisdictions import JurisdictionTree, UnknownJurisdiction
from core.web import ApiError

_STATION = re.compile(r"\d{6}-\d{2}")

OnLogout = Callable[[User], Awaitable[None]]


@dataclass(frozen=True)
class Auth:
    accounts: AccountService
    sessions: SessionStore
    limiter: LoginLimiter
    secure_cookies: bool
    on_logout: OnLogout | None


AUTH = web.AppKey("accounts_auth", Auth)
SESSION = web.RequestKey("accounts_session", Session)
TOKEN = web.RequestKey("accounts_token", str)
USER = web.RequestKey("accounts_user", User)


def user_of(request: web.Request) -> User:
    """The logged-in user of ``request``, or the 401 ``unauthenticated`` refusal."""
    # ``in`` and ``[]`` rather than ``get``: only ``[]`` knows the RequestKey's type.
    if USER not in request:
        raise ApiError(401, "unauthenticated", "you are not logged in, or your session has ended: log in again",
                       "未登录或会话已结束，请重新登录")
    return request[USER]


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
    token = request.get(TOKEN)
    if token is None:
        return False
    return await request.config_dict[AUTH].sessions.touch(token) is not None


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
