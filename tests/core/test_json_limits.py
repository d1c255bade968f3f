"""The limits every JSON body gets from the HTTP toolkit (``core.web.read_json_object``),
whatever its endpoint: nesting, number size, text that cannot be encoded or stored. Each is a
400 with its own code, both languages, and the path of the place in the body; and an answer
never fails on text it quotes back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given

from core.web import MAX_DEPTH, MAX_SAFE_INTEGER, json_response, new_web_app, read_json_object
from tests.support import fuzz


async def echo(request: web.Request) -> web.Response:
    return json_response({"got": await read_json_object(request, limit=256 * 1024)})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = new_web_app()
    app.router.add_post("/echo", echo)
    async with TestServer(app) as server, TestClient(server) as client:
        yield client


async def post(client: TestClient, body: bytes, language: str = "en") -> tuple[int, Any]:
    async with client.post("/echo", data=body, headers={"Content-Type": "application/json",
                                                        "Accept-Language": language}) as resp:
        return resp.status, await resp.json()


def places(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in doc.get("errors", [])]


async def test_nesting_up_to_the_limit_is_taken_and_one_level_more_is_a_400_naming_where(client: TestClient) -> None:
    # The body is level 1, so "a" holds MAX_DEPTH - 1 levels of arrays at most.
    status, doc = await post(client, fuzz.encode({"a": fuzz.deep(MAX_DEPTH - 1)}))
    assert status == 200
    status, doc = await post(client, fuzz.encode({"a": fuzz.deep(MAX_DEPTH)}))
    assert (status, doc["code"]) == (400, "too_deep")
    # The body is level 1, "a" level 2, so the array at level 33 is "a" and 31 times [0].
    assert places(doc) == [("a" + "[0]" * (MAX_DEPTH - 1), "too_deep")]
    assert doc["message"] == f"arrays and objects nest deeper than 32 levels at a{'[0]' * 31}"


@pytest.mark.parametrize("levels", [40, 100_000])
async def test_nesting_far_past_what_the_json_module_can_read_is_the_same_400(client: TestClient, levels: int) -> None:
    # 40 levels are read and then refused; 100,000 are past the json module's recursion limit.
    status, doc = await post(client, b'{"x": [1, {"k\\"": ' + fuzz.encode(fuzz.deep(levels)) + b"}]}", language="zh")
    assert (status, doc["code"]) == (400, "too_deep")
    # Levels: the body 1, x 2, x[1] 3, x[1].k" 4, ..., 33.
    assert places(doc) == [('x[1].k"' + "[0]" * (MAX_DEPTH - 3), "too_deep")]
    assert doc["message"].startswith("数组和对象的嵌套超过 32 层，位于 x[1].k\"")


@pytest.mark.parametrize("number, taken", [
    (str(MAX_SAFE_INTEGER), True), (str(-MAX_SAFE_INTEGER), True), (str(MAX_SAFE_INTEGER + 1), False),
    ("-" + str(MAX_SAFE_INTEGER + 1), False), ("1" + "0" * 5000, False), ("1e308", True), ("1e400", False),
    ("-1e400", False), ("1e-400", True),
])
async def test_numbers_beyond_i_json_are_a_400_naming_the_field(client: TestClient, number: str, taken: bool) -> None:
    status, doc = await post(client, b'{"subject": {"amounts": [0, ' + number.encode() + b"]}}")
    if taken:
        assert status == 200
        return
    assert (status, doc["code"]) == (400, "number_too_large")
    assert places(doc) == [("subject.amounts[1]", "number_too_large")]
    (error,) = doc["errors"]
    assert error["message_en"].startswith("a number is too large (integers within ±9007199254740991")
    assert error["message_zh"].startswith("数字过大")


async def test_lone_surrogates_and_nul_are_a_400_each_place_named_keys_included(client: TestClient) -> None:
    body = b'{"summary": "ok", "caller": {"name": "\\ud800x"}, "\\udc00key": 1, "notes": ["a", "b\\u0000"]}'
    status, doc = await post(client, body)
    assert (status, doc["code"]) == (400, "unencodable_text")
    assert places(doc) == [("caller.name", "unencodable_text"), ("\\udc00key", "unencodable_text"),
                           ("notes[1]", "nul_character")]
    assert doc["message"] == ("text holds a lone UTF-16 surrogate (such as \\ud800), which is not a character and "
                              "cannot be encoded at caller.name (and 2 more place(s), see errors)")
    assert doc["errors"][1]["message_en"].endswith("in a key at \\udc00key")
    assert doc["errors"][2]["message_zh"] == "文本含有 NUL 字符（\\u0000），无法保存，位于 notes[1]"


async def test_a_pair_of_surrogates_is_one_character_and_is_taken(client: TestClient) -> None:
    status, doc = await post(client, b'{"name": "\\ud834\\udd1e"}')
    assert (status, doc) == (200, {"got": {"name": "𝄞"}})


def test_an_answer_quoting_a_lone_surrogate_is_still_json() -> None:
    response = json_response({"echo": "a\ud800b"})
    assert response.body is not None and json.loads(bytes(response.body)) == {"echo": "a\ud800b"}


@fuzz.FUZZ
@given(body=fuzz.JSON.map(fuzz.encode) | fuzz.bodies(fuzz.JSON))
async def test_any_body_is_taken_or_a_4xx_never_a_5xx(client: TestClient, body: bytes) -> None:
    async with client.post("/echo", data=body, headers={"Content-Type": "application/json"}) as resp:
        doc = fuzz.check_answer(resp.status, await resp.read(), resp.content_type, f"POST {body[:200]!r}")
    if resp.status == 400:
        assert doc["code"] in fuzz.BODY_CODES
    else:
        assert resp.status in (200, 413)
