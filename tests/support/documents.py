"""Valid documents to start from: tickets as agents and channels fill them in, and what goes
to the national platform (cases, progress steps, call records), with our organisation's
credentials there."""

from __future__ import annotations

import uuid
from typing import Any

from national.contract import credit_code_check_char
from tests.support.clock import EpochClock
from tickets.intake import NOT_FOR_CHANNELS

#: Our organisation at the platform, and another one (whose data ours must never see).
ORG, SECRET = "ZJ330100", "hangzhou-secret"
OTHER_ORG, OTHER_SECRET = "JS320100", "nanjing-secret"


def credit_code(first17: str) -> str:
    """A unified social credit code with its right check character."""
    return first17 + credit_code_check_char(first17)


# --------------------------------------------------------------------------- tickets

CALL_ID = "0b6f1c4e-8a53-4d2e-9c1a-5e7f00000001"
#: A real-looking unified social credit code of a Hangzhou business, its check character
#: worked out by hand (not by the code under test).
CREDIT_CODE = "91330106MA2B3C4D5D"
HANDLING = {"region": "330106", "level": "county"}


def complaint(**over: Any) -> dict[str, Any]:
    """An agent's complaint from a hotline call, in the ``Case`` shape."""
    return {
        "case_type": "complaint", "channel": "hotline", "hotline_number": "12315",
        "business_line": "general", "call_id": CALL_ID, "agent_id": "a1001",
        "handling": dict(HANDLING),
        "caller": {"phone": "13812345678", "name": "张三丰", "region": "330106"},
        "respondent": {"name": "杭州某某电器有限公司", "credit_code": CREDIT_CODE, "region": "330106",
                       "address": "西湖区文三路 100 号"},
        "subject": {"kind": "goods", "category": "家用电器", "amount": "1999.00", "purchased_on": "2026-09-01"},
        "summary": "购买的洗衣机三周内两次故障，商家拒绝退货。",
        "demand": "refund",
        **over,
    }


def channel_complaint(**over: Any) -> dict[str, Any]:
    """A WeChat user's complaint about a Hangzhou shop, as the WeChat backend sends it to the
    intake API: the agents' complaint without what only a hotline call has, or we set ourselves."""
    case = {k: v for k, v in complaint().items() if k not in NOT_FOR_CHANNELS}
    return {**case, **over}


def report(**over: Any) -> dict[str, Any]:
    return {
        "case_type": "report", "channel": "hotline", "hotline_number": "12331",
        "business_line": "food_drug", "call_id": CALL_ID, "agent_id": "a1001",
        "handling": {"region": "330100", "level": "city"},
        "caller": {"anonymous": True, "region": "330106"},
        "respondent": {"name": "某某餐馆", "region": "330106"},
        "summary": "后厨使用过期食材，多次看到。",
        **over,
    }


def consultation(**over: Any) -> dict[str, Any]:
    return {
        "case_type": "consultation", "channel": "wechat", "handling": {"region": "330000", "level": "province"},
        "caller": {"phone": "13987654321"},
        "summary": "网购七天无理由退货的规定是怎样的？",
        "demand": "information",
        **over,
    }


# --------------------------------------------------------------------------- the platform's documents


def case_document(n: int, *, case_id: str | None = None) -> dict[str, Any]:
    """The ``n``-th of many distinct valid cases, the same on every run (delivery tests and the
    benchmark: no tickets needed)."""
    case_id = case_id or str(uuid.UUID(int=n + 1, version=4))
    return {
        "case_id": case_id, "case_type": "complaint", "channel": "web",
        "received_at": "2026-11-24T09:30:00+08:00",
        "handling": {"region": "330100", "level": "city"},
        "caller": {"phone": "13800138000", "name": "张三", "region": "330106"},
        "respondent": {"name": f"杭州某某贸易有限公司{n}", "credit_code": credit_code(f"91330100{n:09d}"),
                       "region": "330106", "address": "杭州市西湖区文三路 1 号"},
        "subject": {"kind": "goods", "category": "家用电器", "amount": "199.00", "purchased_on": "2026-11-01"},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。", "demand": "refund",
    }


def a_case(clock: EpochClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid complaint received on the hotline two minutes ago, handled by Hangzhou (city level)."""
    clock = clock or EpochClock()
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
        "respondent": {"name": "杭州某某商贸有限公司", "credit_code": CREDIT_CODE,
                       "region": "330106", "address": "杭州市西湖区文三路 1 号"},
        "subject": {"kind": "goods", "category": "食品", "amount": "199.00", "purchased_on": "2026-11-20"},
        "summary": "在超市购买的牛奶已过保质期，要求退款并赔偿。",
        "demand": "refund",
        "deadlines": {"accept_by": clock.datetime(7 * 86400).date().isoformat(),
                      "finish_by": clock.datetime(60 * 86400).date().isoformat()},
    }
    case.update(fields)
    return case


def a_call_record(clock: EpochClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid answered call of 5 minutes."""
    clock = clock or EpochClock()
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


def a_step(kind: str, clock: EpochClock | None = None, **fields: Any) -> dict[str, Any]:
    """A valid progress step of ``kind`` (accepted, rejected, transferred, closed), made now."""
    clock = clock or EpochClock()
    doc: dict[str, Any] = {"step_id": str(uuid.uuid4()), "step": kind, "at": clock.rfc3339()}
    if kind == "transferred":
        doc["to"] = {"region": "330106", "level": "county"}
    if kind == "closed":
        doc["outcome"] = "mediated"
    doc.update(fields)
    return doc
