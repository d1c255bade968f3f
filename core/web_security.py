"""Headers every answer of ours carries, pages and API alike, and who the client is.

* ``Content-Security-Policy``: scripts, styles and everything else from our own origin only
  (no inline script or handler, no ``eval``), so that text an attacker slips into a page (a
  caller's name, a ticket's words) cannot run; the SIP WebSocket's origin is allowed to
  connect when the desktop registers phones; ``frame-ancestors 'none'`` (and the older
  ``X-Frame-Options``) so that no other site frames our pages to trick clicks.
* ``Referrer-Policy: no-referrer``: our URLs (a call's or a recording's id) go nowhere else.
* ``X-Content-Type-Options: nosniff``: a file is what its type says.

A view may set its own value of any of them; it is kept.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from core.forwarded import trust_proxies
from core.settings import Settings

SECURITY_HEADERS = web.AppKey("security_headers", dict)


def content_security_policy(settings: Settings) -> str:
    connect = ["'self'"]
    if settings.desktop.phone_mode == "sip":
        parts = urlsplit(settings.desktop.sip_ws_url)
        if parts.scheme and parts.netloc:
            connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # The pages' empty icon is a data: URL.
        "img-src 'self' data:",
        # The softphone plays the remote party from a MediaStream; recordings from our API.
        "media-src 'self' blob:",
        f"connect-src {' '.join(connect)}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def secure(app: web.Application, settings: Settings) -> None:
    """Put the headers on every answer of ``app`` and trust ``[http] trusted_proxies`` (before it starts)."""
    app[SECURITY_HEADERS] = security_headers(settings)
    trust_proxies(app, settings.http.trusted_proxies)
    app.on_response_prepare.append(_add_headers)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    # A signal, not a middleware: it sees every answer, also files, errors and WebSocket upgrades.
    for name, value in request.config_dict[SECURITY_HEADERS].items():
        response.headers.setdefault(name, value)
