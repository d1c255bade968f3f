"""Every answer, the pages, their files, the API and its refusals, carries the security headers:
a Content-Security-Policy that allows no inline script and no framing, Referrer-Policy and
X-Content-Type-Options; and the pages have nothing inline that such a policy would block."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from core.settings import load_settings
from core.web_security import content_security_policy
from tests.support.desktop import Desk, ready_agent

pytestmark = pytest.mark.slow

STATIC = Path(__file__).resolve().parents[2] / "agent_desktop" / "static"


def check(headers: Mapping[str, str], what: str) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'", what  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'", what
    assert "unsafe" not in csp, what
    assert headers["Referrer-Policy"] == "no-referrer", what
    assert headers["X-Content-Type-Options"] == "nosniff", what
    assert headers["X-Frame-Options"] == "DENY", what


async def test_the_desktop_the_wallboard_their_files_and_the_api_carry_the_security_headers(desk: Desk) -> None:
    agent = await ready_agent(desk)
    for path in ("/", "/desktop/", "/wallboard/", "/desktop/desktop.js", "/css/hotline.css",
                 "/i18n/zh-CN.json", "/api/session", "/api/desktop/state", "/api/nothing-here"):
        async with agent.http.get(desk.url + path) as resp:
            assert resp.status in (200, 404), (path, resp.status)
            check(resp.headers, path)
    async with agent.http.post(desk.url + "/api/session", json={}) as resp:  # a refusal too
        assert resp.status == 400
        check(resp.headers, "a refused login")


def test_the_sip_websocket_may_be_connected_to_only_when_the_desktop_registers_phones() -> None:
    sip = load_settings(desktop={"phone_mode": "sip", "sip_ws_url": "wss://pbx.example:8089/ws"})
    assert "connect-src 'self' wss://pbx.example:8089;" in content_security_policy(sip)
    simulated = load_settings(desktop={"phone_mode": "simulated"})
    assert "connect-src 'self';" in content_security_policy(simulated)


def test_the_pages_have_no_inline_script_style_or_event_handler() -> None:
    for page in STATIC.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I):
            assert not script.strip(), f"{page}: an inline script"
        assert not re.search(r"<script\b(?![^>]*\bsrc=)", html, flags=re.I), f"{page}: a script without src"
        assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), f"{page}: an inline event handler"
        assert not re.search(r"\sstyle\s*=|<style\b", html, flags=re.I), f"{page}: an inline style"
        assert "javascript:" not in html.lower(), f"{page}: a javascript: URL"
