"""The omni-channel intake API over HTTP on a real port, on SQLite and PostgreSQL, with the
real outbox: what a channel sends becomes one completed ticket queued once for the national
platform, retries never make two, a case the platform would refuse leaves nothing behind,
and every answer of these tests is one that ``tickets/openapi.yaml`` describes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import openapi_spec_validator
import pytest
import yaml
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sessionmaker
from core.settings import IntakeSettings
from core.web import new_web_app
from delivery.models import OutboxRow
from delivery.outbox import Outbox
from national.contract import validate_case
from tests.support import documents
from tests.support.clock import Clock
from tests.support.documents import channel_complaint
from tests.support.tickets import TableOutbox
from tickets import http as tickets_http
from tickets.deadlines import WorkingCalendar
from tickets.fields import BY_PATH, GROUPS
from tickets.intake import NOT_FOR_CHANNELS, ApiKeys
from tickets.models import Ticket, TicketAudit, TicketStatusChange
from tickets.services import TicketExists, TicketInvalid, TicketService

KEYS = {"wechat": "wx-0f3c9a7d2e", "web": "web-7b1e5c0a94", "app": "app-52d8e6f13b"}
INTAKE = IntakeSettings(api_key_sha256={c: hashlib.sha256(k.encode()).hexdigest() for c, k in KEYS.items()})
CASES = "/api/v1/intake/cases"
CREDIT_CODE = documents.CREDIT_CODE
#: Variants that run on SQLite only: HTTP-level behaviour that no database changes.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --------------------------------------------------------------------------- the description


def _pointer(base: str, *parts: str) -> str:
    """``base`` (a JSON pointer) extended by ``parts``, each escaped."""
    return base + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


class ApiDescription:
    """``tickets/openapi.yaml``, checking answers against it with ``jsonschema`` (its
    ``$ref`` s resolved), so that the description and the API cannot drift apart."""

    URI = "urn:hotline-intake-api"

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(self.URI, resource)

    def node(self, pointer: str) -> Any:
        target: Any = self.document
        for part in pointer.lstrip("/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return target

    def resolved(self, pointer: str) -> str:
        """Follow ``$ref`` s from ``pointer`` to where the object really is."""
        while "$ref" in (node := self.node(pointer)):
            pointer = node["$ref"].removeprefix("#")
        return pointer

    def schema_errors(self, pointer: str, instance: Any) -> list[str]:
        validator = Draft202012Validator({"$ref": f"{self.URI}#{pointer}"}, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in validator.iter_errors(instance)]

    def operation(self, method: str, path: str) -> str | None:
        for template in self.document["paths"]:
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
                if method.lower() in self.document["paths"][template]:
                    return _pointer("", "paths", template, method.lower())
        return None

    def check(self, method: str, path: str, response: ClientResponse, raw: bytes) -> list[str]:
        problems = [] if re.fullmatch(r"[0-9a-f]{32}", response.headers.get("X-Request-Id", "")) else [
            "no X-Request-Id"]
        operation = self.operation(method, path)
        if operation is None:
            # No such operation (404, 405): still a Problem.
            return problems + self._body(response, raw, "application/json", "/components/schemas/Problem")
        declared = self.node(operation)["responses"]
        if str(response.status) not in declared:
            return problems + [f"{method} {path}: status {response.status} is not described"]
        answer = self.resolved(_pointer(operation, "responses", str(response.status)))
        for name, spec in self.node(answer).get("headers", {}).items():
            spec = self.node(self.resolved(_pointer(answer, "headers", name)))
            value = response.headers.get(name)
            if value is None:
                problems += [f"header {name} is missing"] if spec.get("required") else []
            else:
                validator = Draft202012Validator(spec["schema"])
                problems += [f"header {name}: {e.message}" for e in validator.iter_errors(value)]
        (media, _), = self.node(answer)["content"].items()
        schema = _pointer(answer, "content", media, "schema")
        return problems + self._body(response, raw, media, schema)

    def _body(self, response: ClientResponse, raw: bytes, media: str, schema: str) -> list[str]:
        if response.content_type != media:
            return [f"Content-Type {response.content_type}, described as {media}"]
        body = json.loads(raw) if media == "application/json" else raw.decode("utf-8")
        return self.schema_errors(schema, body)


@pytest.fixture(scope="module")
def description() -> ApiDescription:
    return ApiDescription(yaml.safe_load(tickets_http.OPENAPI_PATH.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- the API under test


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


class Api:
    """A client of the intake API that checks every answer against the description."""

    def __init__(self, client: TestClient, description: ApiDescription) -> None:
        self.client, self.description = client, description

    async def call(self, method: str, path: str, *, channel: str | None = "wechat",
                   headers: Mapping[str, str] | None = None, **kwargs: Any) -> Answer:
        sent = dict(headers or {})
        if channel is not None:
            sent.setdefault("X-Api-Key", KEYS[channel])
        async with self.client.request(method, path, headers=sent, **kwargs) as response:
            raw = await response.read()
            violations = self.description.check(method, path, response, raw)
            assert not violations, f"{method} {path} -> {response.status}: {violations}\n{raw[:500]!r}"
            body = json.loads(raw) if response.content_type == "application/json" else raw
            return Answer(response.status, response.headers, body)

    async def submit(self, case: Any, *, key: str | None = None, channel: str | None = "wechat",
                     language: str | None = None) -> Answer:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        if language:
            headers["Accept-Language"] = language
        answer = await self.call("POST", CASES, channel=channel, headers=headers, json=case)
        if answer.status in (200, 201):
            # What the API took must be what the description allows a channel to send.
            assert self.description.schema_errors("/components/schemas/IntakeCase", case) == []
        return answer

    async def read(self, case_id: str, *, channel: str = "wechat", language: str | None = None) -> Answer:
        headers = {"Accept-Language": language} if language else None
        return await self.call("GET", f"{CASES}/{case_id}", channel=channel, headers=headers)


@pytest.fixture
def tickets(engine: AsyncEngine, clock: Clock, calendar: WorkingCalendar) -> TicketService:
    return TicketService(sessionmaker(engine), Outbox(engine, clock=clock), clock=clock, calendar=calendar)


@pytest.fixture
async def api(tickets: TicketService, description: ApiDescription) -> AsyncIterator[Api]:
    async with TestServer(with_intake(tickets, INTAKE)) as server, TestClient(server) as client:
        yield Api(client, description)


async def count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def stored(engine: AsyncEngine) -> dict[str, int]:
    return {model.__name__: await count(engine, model)
            for model in (Ticket, TicketStatusChange, TicketAudit, OutboxRow)}


NOTHING = {"Ticket": 0, "TicketStatusChange": 0, "TicketAudit": 0, "OutboxRow": 0}


async def outbox_rows(engine: AsyncEngine) -> list[OutboxRow]:
    async with sessionmaker(engine)() as session:
        return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


# --------------------------------------------------------------------------- registering


async def test_a_wechat_complaint_becomes_a_completed_ticket_queued_once_for_the_platform(
        api: Api, tickets: TicketService, engine: AsyncEngine, clock: Clock, calendar: WorkingCalendar) -> None:
    key = str(uuid.uuid4())
    answer = await api.submit(channel_complaint(), key=key)

    assert answer.status == 201
    assert answer.headers["Location"] == f"{CASES}/{key}"
    accept_by = calendar.accept_by(date(2026, 9, 28))
    assert answer.body == {
        "case_id": key, "case_type": "complaint", "channel": "wechat", "status": "completed",
        "delivery_state": "pending", "platform_case_no": None, "delivery_problems": [],
        "received_at": "2026-09-28T10:00:00+08:00",
        "deadlines": {"accept_by": accept_by.isoformat(),
                      "finish_by": calendar.mediation_end(accept_by).isoformat(), "verify_by": None},
    }
    history = await tickets.history(key)
    assert [(c.from_status, c.to_status, c.by) for c in history] == [
        (None, "draft", "intake:wechat"), ("draft", "completed", "intake:wechat")]
    (row,) = await outbox_rows(engine)
    assert (row.kind, row.key, row.ticket_id, row.state) == ("case", key, key, "pending")
    case = json.loads(row.body)
    assert (case["case_id"], case["channel"], case["caller"]["phone"]) == (key, "wechat", "13812345678")
    assert validate_case(case, now=clock.now, idempotency_key=key) == []


@sqlite_only
@pytest.mark.parametrize("channel, case, received", [
    ("app", {"case_type": "consultation", "handling": {"region": "330000", "level": "province"},
             "summary": "网购七天无理由退货的规定是怎样的？", "demand": "information",
             "received_at": "2026-09-27T21:30:00+08:00"}, "2026-09-27T21:30:00+08:00"),
    ("web", {"case_type": "report", "business_line": "food_drug", "handling": {"region": "330100", "level": "city"},
             "caller": {"anonymous": True}, "respondent": {"name": "某某餐馆", "region": "330106"},
             "summary": "后厨使用过期食材，多次看到。"}, "2026-09-28T10:00:00+08:00"),
])
async def test_an_app_consultation_and_an_anonymous_web_report_are_registered_for_their_own_channel(
        api: Api, tickets: TicketService, channel: str, case: dict[str, Any], received: str) -> None:
    answer = await api.submit(case, channel=channel)
    assert answer.status == 201
    assert (answer.body["channel"], answer.body["received_at"]) == (channel, received)
    ticket = await tickets.get(answer.body["case_id"])
    assert (ticket.channel, ticket.case_type) == (channel, case["case_type"])


async def test_a_retry_with_the_same_idempotency_key_is_answered_from_the_first_ticket_and_registers_nothing(
        api: Api, engine: AsyncEngine, clock: Clock) -> None:
    key = str(uuid.uuid4())
    first = await api.submit(channel_complaint(), key=key)
    clock.advance(seconds=30)
    # The same case as the client's JSON library may write it again: other key order,
    # blanks around text, "1999" for "1999.00", the key in capitals.
    again = dict(reversed(channel_complaint(summary=" 购买的洗衣机三周内两次故障，商家拒绝退货。 ").items()))
    again["subject"] = {**again["subject"], "amount": "1999"}
    retry = await api.submit(again, key=key.upper())

    assert (first.status, retry.status) == (201, 200)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.body == first.body
    assert (await count(engine, Ticket), await count(engine, OutboxRow)) == (1, 1)


async def test_a_retry_with_received_at_written_in_another_offset_is_a_replay_and_another_instant_a_conflict(
        api: Api, engine: AsyncEngine) -> None:
    key = str(uuid.uuid4())
    first = await api.submit(channel_complaint(received_at="2026-09-28T09:30:00+08:00"), key=key)
    # The same instant as the client's other server writes it: in UTC.
    retry = await api.submit(channel_complaint(received_at="2026-09-28T01:30:00Z"), key=key)
    a_minute_later = await api.submit(channel_complaint(received_at="2026-09-28T01:31:00Z"), key=key)

    assert (first.status, retry.status, a_minute_later.status) == (201, 200, 409)
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.body == first.body
    assert retry.body["received_at"] == "2026-09-28T09:30:00+08:00"
    assert (await count(engine, Ticket), await count(engine, OutboxRow)) == (1, 1)


async def test_two_copies_of_one_case_sent_at_once_register_one_ticket(api: Api, engine: AsyncEngine) -> None:
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(api.submit(channel_complaint(), key=key) for _ in range(2)))
    assert sorted(a.status for a in answers) == [200, 201]
    assert answers[0].body == answers[1].body
    assert (await count(engine, Ticket), await count(engine, OutboxRow)) == (1, 1)


async def test_the_same_key_with_a_different_case_is_a_conflict_and_changes_nothing(
        api: Api, tickets: TicketService, engine: AsyncEngine) -> None:
    key = str(uuid.uuid4())
    await api.submit(channel_complaint(), key=key)
    before = await stored(engine)

    changed = await api.submit(channel_complaint(demand="compensation"), key=key)
    extra_field = await api.submit({**channel_complaint(), "channel": "web"}, key=key)
    other_channel = await api.submit(channel_complaint(), key=key, channel="web")

    for answer in (changed, extra_field, other_channel):
        assert answer.status == 409 and answer.body["code"] == "conflict", answer.body
        assert f"Idempotency-Key {key} was already used for a different case" in answer.body["message"]
    assert "wechat" not in json.dumps(other_channel.body)
    assert (await tickets.get(key)).demand == "refund"
    assert await stored(engine) == before


async def test_a_retry_after_the_platform_refused_the_case_and_an_agent_corrected_it_is_still_a_replay(
        api: Api, tickets: TicketService) -> None:
    key = str(uuid.uuid4())
    await api.submit(channel_complaint(), key=key)
    await tickets.record_delivery(key, problems=[{"field": "respondent.address", "code": "too_long",
                                                  "message": "too long", "message_zh": "过长"}])
    await tickets.update(key, {"respondent": {"address": "西湖区文三路 100 号 2 楼"}}, by="a1001",
                         version=(await tickets.get(key)).version)

    retry = await api.submit(channel_complaint(), key=key)
    assert retry.status == 200
    assert (retry.body["status"], retry.body["delivery_state"]) == ("draft", "refused")


# --------------------------------------------------------------------------- refusing


async def test_a_case_whose_credit_code_has_a_wrong_check_character_is_refused_with_every_problem_and_nothing_stored(
        api: Api, engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    case = channel_complaint(
        respondent={"name": "杭州某某电器有限公司", "credit_code": CREDIT_CODE[:17] + "E", "region": "330106",
                    "founded": "2015"},
        handling={"region": "330106", "level": "city"},
        caller={"phone": "138-1234-5678", "name": "张三丰"},
        subject={"kind": "goods", "amount": "19.999"},
        summary="坏了",
        channel="web", call_id=str(uuid.uuid4()), priority="high",
    )
    with caplog.at_level(logging.INFO):
        answer = await api.submit(case)

    assert answer.status == 422 and answer.body["code"] == "invalid"
    assert {(e["field"], e["code"]) for e in answer.body["errors"]} == {
        ("respondent.credit_code", "bad_check_digit"),
        ("respondent.founded", "not_allowed"),
        ("handling.region", "mismatch"),
        ("caller.phone", "bad_format"),
        ("subject.amount", "bad_format"),
        ("summary", "too_short"),
        ("channel", "not_allowed"),
        ("call_id", "not_allowed"),
        ("priority", "not_allowed"),
    }
    assert answer.body["message"] == "the case breaks 9 rule(s) of the national platform; nothing was stored"
    check = next(e for e in answer.body["errors"] if e["code"] == "bad_check_digit")
    assert check["message"] == check["message_en"] == (
        "the check character does not match; a character is probably mistyped")
    assert check["message_zh"] == "统一社会信用代码校验位不正确，请核对每一位"
    assert await stored(engine) == NOTHING
    assert "respondent.credit_code bad_check_digit" in caplog.text
    assert "138-1234-5678" not in caplog.text and "张三丰" not in caplog.text


async def test_a_case_that_breaks_the_rules_only_once_stored_as_a_ticket_leaves_no_draft_behind(
        api: Api, engine: AsyncEngine) -> None:
    # Five characters as sent, two once the blanks a ticket never keeps are gone.
    answer = await api.submit(channel_complaint(summary="   坏了   "))
    assert answer.status == 422
    assert [(e["field"], e["code"]) for e in answer.body["errors"]] == [("summary", "too_short")]
    assert await stored(engine) == NOTHING


@sqlite_only
@pytest.mark.parametrize("accept_language, chosen", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("zh", "zh"), ("en;q=0.9, zh-Hans;q=0.5", "en"), ("fr, zh;q=0.2", "zh"),
    ("de", "en"), (None, "en"),
])
async def test_accept_language_chooses_the_language_of_the_messages_and_both_are_always_given(
        api: Api, accept_language: str | None, chosen: str) -> None:
    answer = await api.submit(channel_complaint(summary="坏了"), language=accept_language)
    assert answer.headers["Content-Language"] == chosen
    (error,) = answer.body["errors"]
    assert error["message"] == error[f"message_{chosen}"]
    assert (error["message_en"], error["message_zh"]) == (
        "must be at least 5 characters (has 2)", "至少需要 5 个字符（现为 2）")
    expected = "案件有 1 处不符合全国平台的规则，未予登记" if chosen == "zh" else \
        "the case breaks 1 rule(s) of the national platform; nothing was stored"
    assert answer.body["message"] == expected


@sqlite_only
@pytest.mark.parametrize("api_key", [None, "", "wx-0f3c9a7d2", "WX-0F3C9A7D2E"])
async def test_a_missing_or_unknown_api_key_is_refused_without_naming_any_channel(
        api: Api, engine: AsyncEngine, api_key: str | None) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if api_key is not None:
        headers["X-Api-Key"] = api_key
    answers = [await api.call("POST", CASES, channel=None, headers=headers, json=channel_complaint()),
               await api.call("GET", f"{CASES}/{uuid.uuid4()}", channel=None, headers=headers)]
    for answer in answers:
        assert answer.status == 401
        assert answer.body == {"code": "unauthorized", "message": "a valid X-Api-Key header is required"}
    assert await stored(engine) == NOTHING


def _json(raw: bytes) -> dict[str, Any]:
    return {"data": raw, "headers": {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}}


@sqlite_only
@pytest.mark.parametrize("request_kwargs, message", [
    (_json(b'{"case_type": '), "the body is not valid JSON: Expecting value at line 1 column 15"),
    (_json(b"[]"), "the body must be a JSON object, not an array"),
    (_json(b'"a complaint"'), "the body must be a JSON object, not a string"),
    (_json(b""), "the body is empty; send a JSON object"),
    (_json(b'{"summary": "one", "summary": "two"}'),
     "the body is not valid JSON: the key 'summary' appears twice in one object"),
    (_json(b'{"subject": {"amount": NaN}}'), "the body is not valid JSON: NaN is not a JSON value"),
    (_json("{\"summary\": \"\xe5\"}".encode("latin-1")), "the body is not UTF-8 (byte 13)"),
    ({"data": json.dumps(channel_complaint()),
      "headers": {"Content-Type": "text/plain", "Idempotency-Key": str(uuid.uuid4())}},
     "the body must be JSON sent as Content-Type: application/json (got text/plain)"),
    ({"data": json.dumps(channel_complaint()).encode("utf-16"),
      "headers": {"Content-Type": "application/json; charset=utf-16", "Idempotency-Key": str(uuid.uuid4())}},
     "JSON is UTF-8; charset utf-16 is not accepted"),
], ids=["truncated", "array", "string", "empty", "duplicate-key", "nan", "latin-1", "text-plain", "utf-16"])
async def test_a_body_that_is_not_a_json_object_is_a_400_saying_what_is_wrong(
        api: Api, engine: AsyncEngine, request_kwargs: dict[str, Any], message: str) -> None:
    answer = await api.call("POST", CASES, **request_kwargs)
    assert answer.status == 400
    assert answer.body == {"code": "malformed", "message": message}
    assert await stored(engine) == NOTHING


@sqlite_only
@pytest.mark.parametrize("key, code", [(None, "required"), ("  ", "required"), ("case-42", "bad_format")])
async def test_a_missing_or_malformed_idempotency_key_is_a_400_naming_the_header(
        api: Api, engine: AsyncEngine, key: str | None, code: str) -> None:
    headers = {} if key is None else {"Idempotency-Key": key}
    answer = await api.call("POST", CASES, headers=headers, json=channel_complaint())
    assert answer.status == 400 and answer.body["code"] == "malformed"
    assert [(e["field"], e["code"]) for e in answer.body["errors"]] == [("Idempotency-Key", code)]
    assert await stored(engine) == NOTHING


@sqlite_only
async def test_a_body_over_256_kib_is_refused_whether_its_length_is_announced_or_not(
        api: Api, engine: AsyncEngine) -> None:
    big = json.dumps(channel_complaint(summary="很" * 90_000), ensure_ascii=False).encode()
    assert len(big) > 256 * 1024

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 16_384):
            yield big[start:start + 16_384]

    for data in (big, chunked()):
        answer = await api.call("POST", CASES, data=data, headers={
            "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
        assert answer.status == 413
        assert answer.body == {"code": "too_large", "message": "the body is larger than 256 KiB"}
    assert await stored(engine) == NOTHING


# --------------------------------------------------------------------------- following a case


async def test_a_channel_follows_its_case_until_the_platform_has_it(api: Api, tickets: TicketService) -> None:
    key = (await api.submit(channel_complaint())).body["case_id"]
    assert (await api.read(key)).body["delivery_state"] == "pending"

    await tickets.record_delivery(key, platform_case_no="1231520260928000001")
    answer = await api.read(key)
    assert answer.status == 200
    assert (answer.body["status"], answer.body["delivery_state"], answer.body["platform_case_no"]) == (
        "completed", "delivered", "1231520260928000001")


@sqlite_only
async def test_a_case_the_platform_refused_shows_why_in_the_language_asked_for(
        api: Api, tickets: TicketService) -> None:
    key = (await api.submit(channel_complaint())).body["case_id"]
    await tickets.record_delivery(key, problems=[{
        "field": "respondent.region", "code": "unknown_region", "message": "region code has no province with prefix 99",
        "message_zh": "行政区划代码的省级前缀 99 不存在"}])

    answer = await api.read(key, language="zh")
    assert (answer.body["status"], answer.body["delivery_state"], answer.body["platform_case_no"]) == (
        "draft", "refused", None)
    assert answer.body["delivery_problems"] == [{
        "field": "respondent.region", "code": "unknown_region", "message": "行政区划代码的省级前缀 99 不存在",
        "message_en": "region code has no province with prefix 99", "message_zh": "行政区划代码的省级前缀 99 不存在"}]


@sqlite_only
async def test_a_channel_sees_only_its_own_cases_and_every_other_id_is_the_same_404(
        api: Api, tickets: TicketService) -> None:
    wechat_case = (await api.submit(channel_complaint())).body["case_id"]
    # An agent typed a WeChat complaint in by hand: the centre's ticket, not the channel's.
    by_agent = await tickets.create({"channel": "wechat", "summary": "客服代录的微信投诉"}, by="a1001")

    assert (await api.read(wechat_case.upper())).status == 200
    for case_id, channel in ((wechat_case, "web"), (by_agent.id, "wechat"), (str(uuid.uuid4()), "wechat"),
                             ("not-a-uuid", "wechat")):
        answer = await api.read(case_id, channel=channel)
        assert answer.status == 404
        assert answer.body == {"code": "not_found", "message": f"this channel has no case {case_id}"}


# --------------------------------------------------------------------------- the application


@sqlite_only
async def test_the_description_is_served_is_valid_openapi_3_1_and_names_exactly_the_routes_and_fields(
        api: Api, description: ApiDescription) -> None:
    answer = await api.call("GET", "/api/openapi.yaml", channel=None)
    assert answer.status == 200
    assert answer.body == tickets_http.OPENAPI_PATH.read_bytes()
    document = yaml.safe_load(answer.body)
    openapi_spec_validator.validate(document)
    assert document["openapi"] == "3.1.0"

    routes = {(r.method, re.sub(r"\{[^}]+\}", "{}", r.resource.canonical)) for r in api.client.app.router.routes()}
    described = {(method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
                 for path, item in document["paths"].items() for method in item}
    assert routes == described

    # The fields a channel may send, as the code decides them, are the ones described.
    schema = description.node("/components/schemas/IntakeCase/properties")
    allowed = {path for path, field in BY_PATH.items() if field.in_case and path.split(".")[0] not in NOT_FOR_CHANNELS}
    described_fields = {f"{name}.{sub}" if sub else name for name, prop in schema.items()
                        for sub in (_properties(description, prop) if name in GROUPS else [None])}
    assert described_fields == allowed


def _properties(description: ApiDescription, schema: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        schema = description.node(schema["$ref"].removeprefix("#"))
    return list(schema["properties"])


@sqlite_only
async def test_unknown_paths_and_methods_are_json_problems_never_html(api: Api) -> None:
    missing = await api.call("GET", "/api/v1/intake/complaints")
    assert (missing.status, missing.body["code"]) == (404, "not_found")
    wrong = await api.call("DELETE", CASES)
    assert (wrong.status, wrong.body["code"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"
    chinese = await api.call("PUT", "/api/openapi.yaml", headers={"Accept-Language": "zh"})
    assert chinese.body == {"code": "method_not_allowed", "message": "该路径不支持此请求方法（见 Allow 响应头）"}


@sqlite_only
async def test_an_unexpected_failure_is_a_500_with_a_request_id_logged_without_personal_data(
        api: Api, tickets: TicketService, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("INSERT failed for caller 13812345678 张三丰")

    monkeypatch.setattr(tickets, "create_completed", broken)
    with caplog.at_level(logging.ERROR, logger="core.web"):
        answer = await api.submit(channel_complaint())

    assert answer.status == 500 and answer.body["code"] == "internal_error"
    request_id = answer.headers["X-Request-Id"]
    assert answer.body["request_id"] == request_id and request_id in answer.body["message"]
    assert f"request {request_id} POST {CASES} failed with RuntimeError" in caplog.text
    assert "in broken" in caplog.text  # the stack, to find where
    assert "13812345678" not in caplog.text and "张三丰" not in caplog.text
    assert await stored(engine) == NOTHING


@pytest.mark.parametrize("digests, message", [
    ({"hotline": "a" * 64}, "'hotline' is not an intake channel; use one of web, wechat, app, letter, visit"),
    # Cases the government service hotline (12345) hands over are no channel's own submissions.
    ({"gov_hotline": "a" * 64}, "'gov_hotline' is not an intake channel"),
    ({"web": "not-a-digest"}, r"api_key_sha256.web must be the key's SHA-256 as 64 hex digits"),
    ({"web": "A" * 64, "app": "a" * 64}, "web and app have the same key"),
])
def test_intake_keys_must_be_sha256_digests_of_intake_channels_each_its_own(
        digests: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ApiKeys(digests)


def test_an_api_key_is_told_apart_only_by_its_own_digest() -> None:
    keys = ApiKeys(INTAKE.api_key_sha256)
    assert [keys.channel_of(k) for k in (KEYS["web"], KEYS["app"], KEYS["web"] + " ", None, "")] == [
        "web", "app", None, None, None]


# --------------------------------------------------------------------------- the service underneath


@pytest.fixture
def table_outbox() -> TableOutbox:
    return TableOutbox()


@pytest.fixture
def service(engine: AsyncEngine, table_outbox: TableOutbox, clock: Clock, calendar: WorkingCalendar) -> TicketService:
    return TicketService(sessionmaker(engine), table_outbox, clock=clock, calendar=calendar)


def wechat_draft(**over: Any) -> dict[str, Any]:
    return {**channel_complaint(**over), "channel": "wechat"}


async def test_create_completed_writes_the_ticket_its_history_and_its_case_in_one_go(
        service: TicketService, engine: AsyncEngine) -> None:
    key = str(uuid.uuid4())
    ticket = await service.create_completed(wechat_draft(), by="intake:wechat", ticket_id=key)
    assert (ticket.id, ticket.status, ticket.delivery_state, ticket.version) == (key, "completed", "pending", 1)
    assert [row["key"] for row in await TableOutbox.rows(engine)] == [key]
    origin = await service.origin(key)
    assert origin.by == "intake:wechat"
    assert origin.made_from(wechat_draft()) and not origin.made_from(wechat_draft(demand="repair"))
    assert not origin.made_from({**wechat_draft(), "related_to": "not a uuid"})


async def test_create_completed_of_a_case_the_platform_would_refuse_writes_nothing(
        service: TicketService, engine: AsyncEngine) -> None:
    draft = wechat_draft(respondent={"name": "某店", "credit_code": CREDIT_CODE[:17] + "E", "region": "330106"})
    with pytest.raises(TicketInvalid, match="respondent.credit_code: bad_check_digit"):
        await service.create_completed(draft, by="intake:wechat", ticket_id=str(uuid.uuid4()))
    assert await stored(engine) == NOTHING
    assert await TableOutbox.rows(engine) == []


async def test_when_the_outbox_fails_create_completed_leaves_no_draft_behind(
        service: TicketService, table_outbox: TableOutbox, engine: AsyncEngine) -> None:
    table_outbox.fail_with = ConnectionResetError("database connection lost")
    with pytest.raises(ConnectionResetError):
        await service.create_completed(wechat_draft(), by="intake:wechat", ticket_id=str(uuid.uuid4()))
    assert (await count(engine, Ticket), await count(engine, TicketAudit)) == (0, 0)
    assert await TableOutbox.rows(engine) == []


async def test_create_completed_with_an_id_that_exists_changes_nothing(service: TicketService) -> None:
    first = await service.create({"summary": "客服代录"}, by="a1001")
    with pytest.raises(TicketExists, match=f"ticket {first.id} exists already"):
        await service.create_completed(wechat_draft(), by="intake:wechat", ticket_id=first.id)
    assert (await service.get(first.id)).status == "draft"
    # Two at once: the primary key lets one through, the other is told.
    key = str(uuid.uuid4())
    results = await asyncio.gather(
        *(service.create_completed(wechat_draft(), by="intake:wechat", ticket_id=key) for _ in range(2)),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Ticket", "TicketExists"], results


def test_check_new_reads_the_draft_as_sent_and_receives_it_now(service: TicketService) -> None:
    key = str(uuid.uuid4())
    assert service.check_new(wechat_draft(), ticket_id=key) == []
    problems = service.check_new(wechat_draft(summary=42, received_at="2026-09-28T10:30:00+08:00"), ticket_id=key)
    assert {(p.field, p.code) for p in problems} == {("summary", "bad_type"), ("received_at", "in_future")}



def with_intake(tickets: TicketService, intake: IntakeSettings) -> web.Application:
    app = new_web_app()
    tickets_http.add_routes(app, tickets=tickets, intake=intake)
    return app
