"""The desktop's and the wallboard's API under fuzzing, on the application as ``hotline serve``
wires it: an agent on a call with a draft ticket, and a supervisor, send every JSON endpoint
bodies made from what the pages send and spoiled, any JSON, any bytes; ids and queries of any
text. No answer is a 5xx, and a refused request stores no ticket, history, audit or outbox row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agent_desktop.services import BREAK_REASONS
from tests.support import fuzz
from tests.support.accounts import browser as anonymous_browser
from tests.support.desktop import Browser, Desk, answered_call, ready_agent
from tests.support.documents import complaint
from tests.support.jurisdictions import XIHU, ZHEJIANG

pytestmark = pytest.mark.slow

#: Filled in when sent: the agent's call, their draft ticket and its current version.
CALL, TICKET, VERSION = "$call", "$ticket", "$version"

#: A ticket's fields as the desktop's form sends them (the call and the agent are the desktop's).
FORM = {k: v for k, v in complaint(received_at="2026-09-28T10:00:00+08:00").items() if k not in ("call_id", "agent_id")}
#: What the pages send to each endpoint that reads a body: (who sends it, method, path, document).
SHAPES: list[tuple[str, str, str, Any]] = [
    ("agent", "POST", "/api/desktop/state", {"state": "break", "reason": BREAK_REASONS[0]}),
    ("agent", "POST", "/api/desktop/state", {"state": "available"}),
    ("agent", "POST", "/api/desktop/call/hold", {"on": True}),
    ("agent", "POST", "/api/desktop/call/mute", {"on": False}),
    ("agent", "POST", "/api/desktop/call/jurisdiction", {"code": XIHU}),
    ("agent", "POST", "/api/desktop/call/transfer", {"queue": {"jurisdiction": "330108", "line": "general"}}),
    ("agent", "POST", "/api/desktop/call/transfer", {"agent_id": "1999"}),
    ("agent", "POST", "/api/desktop/tickets", {"call_id": CALL, "fields": FORM}),
    ("agent", "PATCH", "/api/desktop/tickets/$ticket", {"version": VERSION, "fields": FORM}),
    ("agent", "PATCH", "/api/desktop/tickets/$ticket", {"version": VERSION, "fields": {
        "subject.purchased_on": "2026-09-01", "recording.duration_s": 12.5, "caller.anonymous": False}}),
    ("agent", "POST", "/api/desktop/tickets/$ticket/complete", {"version": 999_999}),
    ("supervisor", "POST", "/api/wallboard/monitor", {"call_id": CALL, "mode": "listen"}),
]
ROLES = ("agent", "supervisor", "nobody")


@st.composite
def body_requests(draw: st.DrawFn) -> tuple[str, tuple[str, str, bytes]]:
    """Mostly the endpoint's own user, sometimes another or nobody (whose refusal comes
    before the body is read)."""
    role, method, path, doc = draw(st.sampled_from(SHAPES))
    who = draw(st.sampled_from([role] * 6 + [r for r in ROLES if r != role]))
    return who, (method, path, draw(fuzz.bodies(st.just(doc))))


#: Endpoints that read an id from the path or a query, as (method, template).
ID_REQUESTS = st.tuples(st.sampled_from([
    ("GET", "/api/desktop/tickets/{id}"), ("PATCH", "/api/desktop/tickets/{id}"),
    ("POST", "/api/desktop/tickets/{id}/validate"), ("POST", "/api/desktop/tickets/{id}/complete"),
    ("GET", "/api/desktop/tickets?call_id={id}"), ("GET", "/api/wallboard?jurisdiction={id}"),
    ("DELETE", "/api/wallboard/monitor/{id}"), ("GET", "/api/desktop/state?{id}=1"),
]), fuzz.SEGMENTS)
WHO = st.sampled_from(["agent", "agent", "supervisor", "supervisor", "nobody"])


@dataclass
class Scene:
    desk: Desk
    agent: Browser
    supervisor: Browser
    nobody: aiohttp.ClientSession
    call_id: str
    ticket_id: str

    async def send(self, who: str, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        browser = {"agent": self.agent, "supervisor": self.supervisor}.get(who)
        if body is not None:
            version = (await self.agent.ok("GET", f"/api/desktop/tickets/{self.ticket_id}"))["version"]
            body = (body.replace(b'"$call"', f'"{self.call_id}"'.encode())
                    .replace(b'"$version"', str(version).encode()))
        path = path.replace(TICKET, self.ticket_id)
        headers = {"Content-Type": "application/json"}
        http = self.nobody if browser is None else browser.http
        if browser is not None:
            headers["X-CSRF-Token"] = browser.csrf
        async with http.request(method, self.desk.url + path, data=body, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, fuzz.check_answer(resp.status, raw, resp.content_type, f"{who} {method} {path}")


@pytest.fixture
async def scene(desk: Desk) -> AsyncIterator[Scene]:
    agent = await ready_agent(desk)
    call_id = await answered_call(desk, agent)
    ticket = await agent.ok("POST", "/api/desktop/tickets", {"call_id": call_id, "fields": {}}, status=201)
    # With a phone, so that a monitor can ring it.
    await desk.users.supervisor(jurisdiction=ZHEJIANG, sip_endpoint="PJSIP/9001")
    supervisor = await desk.browser_for("supervisor")
    async with anonymous_browser() as nobody:
        yield Scene(desk, agent, supervisor, nobody, call_id, ticket["id"])


@fuzz.FUZZ
@given(sent=body_requests())
@example(sent=("agent", ("POST", "/api/desktop/state", fuzz.encode(fuzz.deep(30_000)))))
@example(sent=("agent", ("PATCH", "/api/desktop/tickets/$ticket", fuzz.encode(
    {"version": VERSION, "fields": {"received_at": "0001-01-01T00:00:00+08:00"}}))))
@example(sent=("agent", ("PATCH", "/api/desktop/tickets/$ticket", fuzz.encode(
    {"version": VERSION, "fields": {"summary": "\ud800", "caller": {"name": "a\x00"}}}))))
async def test_whatever_the_desktop_and_the_wallboard_are_sent_is_never_a_5xx_and_a_refusal_stores_nothing(
        scene: Scene, sent: tuple[str, tuple[str, str, bytes]]) -> None:
    who, (method, path, body) = sent
    await fuzz.nothing_stored_if_refused(scene.desk.app.clients.db, lambda: scene.send(who, method, path, body),
                                         f"{who} {method} {path} {body[:200]!r}")


@fuzz.FUZZ
@given(who=WHO, request=ID_REQUESTS)
async def test_any_id_or_query_is_never_a_5xx_and_a_refusal_stores_nothing(
        scene: Scene, who: str, request: tuple[tuple[str, str], str]) -> None:
    (method, template), segment = request
    path = fuzz.path_with(template, id=segment)
    body = fuzz.encode({"version": VERSION, "fields": {}}) if method in ("PATCH", "POST") else None
    await fuzz.nothing_stored_if_refused(scene.desk.app.clients.db, lambda: scene.send(who, method, path, body),
                                         f"{who} {method} {path}")


async def test_the_odd_inputs_that_once_were_500s_are_refused_naming_the_field(scene: Scene) -> None:
    status, doc = await scene.send("agent", "POST", "/api/desktop/state", fuzz.encode(fuzz.deep(30_000)))
    assert (status, doc["code"]) == (400, "too_deep")
    status, doc = await scene.send("agent", "PATCH", f"/api/desktop/tickets/{TICKET}", fuzz.encode(
        {"version": VERSION, "fields": {"received_at": "0001-01-01T00:00:00+08:00"}}))
    assert (status, doc["code"]) == (422, "invalid")
    assert [e["field"] for e in doc["errors"]] == ["received_at"]
    status, doc = await scene.send("agent", "PATCH", f"/api/desktop/tickets/{TICKET}", fuzz.encode(
        {"version": VERSION, "fields": {"recording": {"duration_s": fuzz.Raw("1" + "0" * 5000)}}}))
    assert (status, doc["code"]) == (400, "number_too_large")
    assert [e["field"] for e in doc["errors"]] == ["fields.recording.duration_s"]
