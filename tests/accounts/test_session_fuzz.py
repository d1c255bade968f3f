"""Logging in under fuzzing, on the application as ``hotline serve`` wires it: whatever a
client sends to ``/api/session`` (credentials spoiled, any JSON, any bytes, odd origins and
languages), the answer is never a 5xx, and nothing is stored by a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from accounts.models import User
from tests.support import fuzz
from tests.support.accounts import PASSWORD, browser, origin_of
from tests.support.desktop import Desk

pytestmark = pytest.mark.slow

CREDENTIALS = st.sampled_from([{"username": "agent1001", "password": PASSWORD},
                               {"username": "AGENT1001", "password": "wrong"}])


@pytest.fixture
async def client(desk: Desk) -> AsyncIterator[aiohttp.ClientSession]:
    await desk.users.agent(agent_id="1001")
    async with browser() as http:
        yield http


async def users(desk: Desk) -> int:
    async with desk.app.clients.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(User))).scalar_one())


@fuzz.FUZZ
@given(method=st.sampled_from(["POST", "POST", "POST", "GET", "DELETE"]), body=fuzz.bodies(CREDENTIALS),
       headers=st.fixed_dictionaries({}, optional={
           "Origin": st.one_of(fuzz.HEADER_VALUES, st.just("")), "Accept-Language": fuzz.HEADER_VALUES,
           "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=ascii"]),
           "X-CSRF-Token": fuzz.HEADER_VALUES, "Cookie": fuzz.HEADER_VALUES.map(lambda v: f"hotline_session={v}")}))
@example(method="POST", body=fuzz.encode({"username": "agent1001\x00", "password": PASSWORD}), headers={})
@example(method="POST", body=fuzz.encode({"username": "\ud800", "password": fuzz.deep(100_000)}), headers={})
async def test_whatever_is_sent_to_log_in_is_never_a_5xx_and_a_refusal_stores_nothing(
        desk: Desk, client: aiohttp.ClientSession, method: str, body: bytes, headers: dict[str, str]) -> None:
    sent = {"Content-Type": "application/json", "Origin": origin_of(desk.url), **headers}

    async def send() -> tuple[int, Any]:
        async with client.request(method, f"{desk.url}/api/session", data=body, headers=sent) as resp:
            raw = await resp.read()
            return resp.status, fuzz.check_answer(resp.status, raw, resp.content_type, f"{method} {body[:200]!r}")

    before = await users(desk)
    await fuzz.nothing_stored_if_refused(desk.app.clients.db, send, f"{method} /api/session {body[:200]!r}")
    assert await users(desk) == before
