"""Tickets as agents fill them in: complete ones of each case type, in the ``Case`` shape."""

from __future__ import annotations

from typing import Any

CALL_ID = "0b6f1c4e-8a53-4d2e-9c1a-5e7f00000001"
#: A real-looking unified social credit code of a Hangzhou business, check character right.
CREDIT_CODE = "91330106MA2B3C4D5D"
HANDLING = {"region": "330106", "level": "county"}


def complaint(**over: Any) -> dict[str, Any]:
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
