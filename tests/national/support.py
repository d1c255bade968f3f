"""Test helpers for the national platform: valid documents to start from, a clock to move,
and raw signed requests for probing the stand-in where our client would refuse to go."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
from yarl import URL

from core.vocabulary import CHINA_TZ
from national.contract import credit_code_check_char, format_datetime
from national.signing import signed_headers

ORG, SECRET = "ZJ330100", "hangzhou-secret"
OTHER_ORG, OTHER_SECRET = "JS320100", "nanjing-secret"


class FakeClock:
    """A platform clock that moves only when told (starts at the real time)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def datetime(self, offset_s: float = 0.0) -> datetime:
        return datetime.fromtimestamp(self.now + offset_s, CHINA_TZ)

    def rfc3339(self, offset_s: float = 0.0) -> str:
        return format_datetime(self.datetime(offset_s))


def credit_code(first17: str) -> str:
    """A credit code with its right check character."""
    return first17 + credit_code_check_char(first17)


def a_case(clock: FakeClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid complaint received on the hotline, handled by Hangzhou (city level)."""
    clock = clock or FakeClock()
    case_id = str(uuid.uuid4())
    case: dict[str, Any] = {
        "case_id": case_id,
        "case_type": "complaint",
        "channel": "hotline",
        "hotline_number": "12315",
        "business_line": "general",
        "call_id": str(uuid.uuid4()),
        "received_at": clock.rfc3339(-120),
        "handling": {"region": "330100", "level": "city"},
        "agent_id": "A1001",
        "caller": {"phone": "13800138000", "name": "张三", "region": "330106"},
        "respondent": {"name": "杭州某某商贸有限公司", "credit_code": credit_code("91330106MA2B3C4D5"),
                       "region": "330106", "address": "杭州市西湖区文三路 1 号"},
        "subject": {"kind": "goods", "category": "食品", "amount": "199.00", "purchased_on": "2026-11-20"},
        "summary": "在超市购买的牛奶已过保质期，要求退款并赔偿。",
        "demand": "refund",
        "deadlines": {"accept_by": clock.datetime(7 * 86400).date().isoformat(),
                      "finish_by": clock.datetime(60 * 86400).date().isoformat()},
    }
    case.update(fields)
    return case


def a_call_record(clock: FakeClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid answered call of 5 minutes."""
    clock = clock or FakeClock()
    record: dict[str, Any] = {
        "call_id": str(uuid.uuid4()),
        "hotline_number": "12315",
        "caller_phone": "13800138000",
        "started_at": clock.rfc3339(-400),
        "queued_at": clock.rfc3339(-370),
        "answered_at": clock.rfc3339(-340),
        "ended_at": clock.rfc3339(-40),
        "handling": {"region": "330100", "level": "city"},
        "menu_path": ["main", "complaint"],
        "recognized_by": "dtmf",
        "outcome": "answered",
        "agent_id": "A1001",
        "satisfaction": 5,
    }
    record.update(fields)
    return record


def a_step(kind: str, clock: FakeClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid progress step of ``kind`` (accepted, rejected, transferred, closed), made now."""
    clock = clock or FakeClock()
    doc: dict[str, Any] = {"step_id": str(uuid.uuid4()), "step": kind, "at": clock.rfc3339()}
    if kind == "transferred":
        doc["to"] = {"region": "330106", "level": "county"}
    if kind == "closed":
        doc["outcome"] = "mediated"
    doc.update(fields)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


async def send(http: aiohttp.ClientSession, base_url: str, method: str, path: str, body: bytes = b"", *,
               clock: FakeClock, org: str = ORG, secret: str = SECRET, key: str | None = None,
               content_type: str | None = "application/json; charset=utf-8",
               headers: Mapping[str, str | None] | None = None, sign_path: str | None = None,
               nonce: str | None = None) -> tuple[int, dict[str, str], Any]:
    """One raw signed request; ``headers`` overrides (``None`` removes a header)."""
    url = base_url + path
    request_path = URL(url).raw_path
    all_headers: dict[str, str | None] = dict(signed_headers(org, secret, method, sign_path or request_path,
                                                             body, now=clock(), nonce=nonce))
    if key is not None:
        all_headers["Idempotency-Key"] = key
    if content_type is not None and method != "GET":
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    sent = {k: v for k, v in all_headers.items() if v is not None}
    async with http.request(method, url, data=body if body or method != "GET" else None,
                            headers=sent, skip_auto_headers=["Content-Type"]) as resp:
        raw = await resp.read()
        return resp.status, dict(resp.headers), json.loads(raw) if raw else None


async def post_case(http: aiohttp.ClientSession, base_url: str, case: Mapping[str, Any], *,
                    clock: FakeClock, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    kwargs.setdefault("key", case.get("case_id"))
    return await send(http, base_url, "POST", "/v1/cases", encode(case), clock=clock, **kwargs)

