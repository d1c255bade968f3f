"""Valid platform documents for delivery tests and the benchmark (no tickets needed)."""

from __future__ import annotations

import uuid
from typing import Any

from national.contract import credit_code_check_char

ORG, SECRET = "TEST330100", "a-shared-secret-for-tests"


def credit_code(serial: int) -> str:
    """A well-formed unified social credit code of a Hangzhou company (right check character)."""
    first17 = f"91330100{serial:09d}"
    return first17 + credit_code_check_char(first17)


def case_document(n: int, *, case_id: str | None = None) -> dict[str, Any]:
    case_id = case_id or str(uuid.UUID(int=n + 1, version=4))
    return {
        "case_id": case_id, "case_type": "complaint", "channel": "web",
        "received_at": "2026-11-24T09:30:00+08:00",
        "handling": {"region": "330100", "level": "city"},
        "caller": {"phone": "13800138000", "name": "张三", "region": "330106"},
        "respondent": {"name": f"杭州某某贸易有限公司{n}", "credit_code": credit_code(n), "region": "330106",
                       "address": "杭州市西湖区文三路 1 号"},
        "subject": {"kind": "goods", "category": "家用电器", "amount": "199.00", "purchased_on": "2026-11-01"},
        "summary": "购买的电水壶使用三天后漏电，商家拒绝退货。", "demand": "refund",
    }
