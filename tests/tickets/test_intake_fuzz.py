"""The intake API under fuzzing, on SQLite and PostgreSQL: whatever a channel sends (bodies made
from ``tickets/openapi.yaml``'s ``IntakeCase`` and spoiled, any JSON, any bytes, odd headers and
case ids), the answer is never a 5xx, and a refused request stores nothing. The odd inputs that
once answered 500 are pinned here with the answer each gets now."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sessionmaker
from core.settings import IntakeSettings
from core.web import new_web_app
from delivery.outbox import Outbox
from tests.support import fuzz
from tests.support.clock import Clock
from tests.support.documents import channel_complaint, consultation, report
from tickets import http as tickets_http
from tickets.deadlines import WorkingCalendar
from tickets.services import TicketService

KEY = "wx-0f3c9a7d2e"
INTAKE = IntakeSettings(api_key_sha256={"wechat": hashlib.sha256(KEY.encode()).hexdigest()})
CASES = tickets_http.CASES_PATH
DESCRIPTION = yaml.safe_load(tickets_http.OPENAPI_PATH.read_text(encoding="utf-8"))
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: Cases to spoil: the description's own, and the channels' everyday ones.
CASES_TO_SPOIL = st.one_of(
    fuzz.from_schema({"$ref": "#/components/schemas/IntakeCase"}, DESCRIPTION),
    st.sampled_from([channel_complaint(), {k: v for k, v in report().items() if k not in ("channel", "hotline_number",
                                                                                         "call_id", "agent_id")},
                     {k: v for k, v in consultation().items() if k != "channel"}]),
)
#: Mostly what a channel sends, so that most requests reach the case: a few keys, types and
#: languages of every kind.
HEADERS = st.fixed_dictionaries({
    "Idempotency-Key": st.one_of(*[st.uuids().map(str)] * 8, st.uuids().map(lambda u: str(u).upper()),
                                 fuzz.HEADER_VALUES),
    "Content-Type": st.sampled_from(["application/json"] * 30 + [
        "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain",
        "application/x-www-form-urlencoded", "application/json; charset=\"utf-8\"", "multipart/form-data; boundary=x"]),
    "X-Api-Key": st.sampled_from([KEY] * 12 + ["", "nope"]),
}, optional={"Accept-Language": fuzz.HEADER_VALUES})


@dataclass
class Intake:
    client: TestClient
    engine: AsyncEngine

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        return await self.send("POST", CASES, data=body, headers=headers)

    async def send(self, method: str, path: str, *, headers: dict[str, str], **kwargs: Any) -> tuple[int, Any]:
        async with self.client.request(method, path, headers={"X-Api-Key": KEY, **headers}, **kwargs) as resp:
            raw = await resp.read()
            return resp.status, fuzz.check_answer(resp.status, raw, resp.content_type, f"{method} {path}")


@pytest.fixture
async def intake(engine: AsyncEngine, clock: Clock, calendar: WorkingCalendar) -> AsyncIterator[Intake]:
    tickets = TicketService(sessionmaker(engine), Outbox(engine, clock=clock), clock=clock, calendar=calendar)
    app = new_web_app()
    tickets_http.add_routes(app, tickets=tickets, intake=INTAKE)
    async with TestServer(app) as server, TestClient(server) as client:
        yield Intake(client, engine)


# --------------------------------------------------------------------------- fuzzing


@fuzz.FUZZ
@given(body=fuzz.bodies(CASES_TO_SPOIL), headers=HEADERS)
@example(body=fuzz.encode(channel_complaint(summary="\ud800 购买的洗衣机三周内两次故障")),
         headers={"Idempotency-Key": "5f0c2a8e-3c1d-4e7b-9a41-0d6b2f8e1c37", "Content-Type": "application/json"})
@example(body=fuzz.encode(channel_complaint(summary="购买的洗衣机\x00三周内两次故障")),
         headers={"Idempotency-Key": "5f0c2a8e-3c1d-4e7b-9a41-0d6b2f8e1c38", "Content-Type": "application/json"})
async def test_whatever_a_channel_sends_is_never_a_5xx_and_a_refusal_stores_nothing(
        intake: Intake, body: bytes, headers: dict[str, str]) -> None:
    await fuzz.nothing_stored_if_refused(intake.engine, lambda: intake.post(body, headers), f"POST {body[:200]!r}")


@sqlite_only
@fuzz.FUZZ
@given(case_id=fuzz.SEGMENTS, headers=st.fixed_dictionaries({}, optional={
    "X-Api-Key": st.sampled_from([KEY] * 5 + [""]), "Accept-Language": fuzz.HEADER_VALUES}))
async def test_reading_any_case_id_is_never_a_5xx(intake: Intake, case_id: str, headers: dict[str, str]) -> None:
    path = fuzz.path_with(CASES + "/{id}", id=case_id)
    await fuzz.nothing_stored_if_refused(intake.engine, lambda: intake.send("GET", path, headers=headers), path)


# --------------------------------------------------------------------------- what once was a 500


async def _submit(intake: Intake, body: bytes) -> tuple[int, Any]:
    before = await fuzz.stored_rows(intake.engine)
    status, doc = await intake.post(body, {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"})
    assert await fuzz.stored_rows(intake.engine) == before
    return status, doc


async def test_a_lone_surrogate_in_a_case_is_a_400_naming_the_field(intake: Intake) -> None:
    status, doc = await _submit(intake, fuzz.encode(channel_complaint(caller={"phone": "13812345678",
                                                                              "name": "张\ud800"})))
    assert (status, doc["code"]) == (400, "unencodable_text")
    assert [(e["field"], e["code"]) for e in doc["errors"]] == [("caller.name", "unencodable_text")]
    assert doc["message"].startswith("text holds a lone UTF-16 surrogate") and doc["message"].endswith("at caller.name")
    assert doc["errors"][0]["message_zh"].endswith("位于 caller.name")


async def test_a_nul_character_is_a_400_before_postgresql_could_refuse_it(intake: Intake) -> None:
    status, doc = await _submit(intake, fuzz.encode(channel_complaint(summary="购买的洗衣机\x00三周内两次故障")))
    assert (status, doc["code"]) == (400, "nul_character")
    assert [(e["field"], e["code"]) for e in doc["errors"]] == [("summary", "nul_character")]


@sqlite_only
@pytest.mark.parametrize("received_at", [
    "0001-01-01T00:00:00+08:00", "0001-01-01T07:59:59+08:00", "0001-01-01T00:00:00Z", "0001-01-01T12:00:00-11:00",
    "9999-12-31T23:59:59Z", "9999-12-31T23:59:60Z", "9999-12-31T20:00:00-08:00", "9999-12-31T23:59:59+23:59",
])
async def test_a_time_at_the_edge_of_the_calendar_is_a_422_naming_the_field(intake: Intake, received_at: str) -> None:
    status, doc = await _submit(intake, fuzz.encode(channel_complaint(received_at=received_at)))
    assert (status, doc["code"]) == (422, "invalid")
    assert ("received_at", "bad_format") in [(e["field"], e["code"]) for e in doc["errors"]]


@sqlite_only
@pytest.mark.parametrize("nesting", [fuzz.deep(100_000), fuzz.deep(33), fuzz.deep(33, "{")])
async def test_nesting_past_32_levels_is_a_400(intake: Intake, nesting: fuzz.Raw) -> None:
    status, doc = await _submit(intake, fuzz.encode(channel_complaint(subject=nesting)))
    assert (status, doc["code"]) == (400, "too_deep")
    (error,) = doc["errors"]
    assert error["code"] == "too_deep"
    assert error["field"].startswith("subject") or error["message_en"].endswith("line 1 column 33") or \
        "column" in error["message_en"]


@sqlite_only
@pytest.mark.parametrize("number", ["1" + "0" * 5000, "9007199254740992", "-9007199254740992", "1e400"])
async def test_a_number_too_large_is_a_400_naming_the_field(intake: Intake, number: str) -> None:
    body = json.dumps(channel_complaint(subject={"kind": "goods", "amount": "0"})).replace('"0"', number)
    status, doc = await _submit(intake, body.encode())
    assert (status, doc["code"]) == (400, "number_too_large")
    assert [(e["field"], e["code"]) for e in doc["errors"]] == [("subject.amount", "number_too_large")]
