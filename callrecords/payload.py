"""A call record as the national platform's ``CallRecord`` (openapi.yaml, ``/v1/call-records``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.vocabulary import CHINA_TZ
from national.contract import PHONE_RE, format_datetime

#: Our outcomes that the platform names differently. A booked callback and one that rang
#: out are both, for the platform, a caller who asked to be called back; a call turned away
#: under overload (the busy message) is one the centre had no room for.
PLATFORM_OUTCOME = {"callback_booked": "callback_requested", "callback_unanswered": "callback_requested",
                    "shed": "overflowed"}

_TIMES = ("started_at", "queued_at", "answered_at", "ended_at")


def handling_org(jurisdiction: str | None) -> dict[str, str] | None:
    """Our jurisdiction code as the platform's ``HandlingOrg``: GB/T 2260 codes give their
    level by their zeros; a station (``<county>-<nn>``) is its county plus a 3-digit number."""
    if not jurisdiction:
        return None
    region, _, station = jurisdiction.partition("-")
    if station:
        return {"region": region, "level": "station", "station": station.zfill(3)}
    if region == "000000":
        return {"region": region, "level": "national"}
    if region.endswith("0000"):
        return {"region": region, "level": "province"}
    return {"region": region, "level": "city" if region.endswith("00") else "county"}


def call_record_payload(record: dict[str, Any]) -> dict[str, Any]:
    """The platform document of an ended call; optional fields we do not know are left out."""
    body: dict[str, Any] = {"call_id": record["call_id"], "hotline_number": record["hotline_number"]}
    phone = record.get("caller_phone")
    if phone and PHONE_RE.fullmatch(phone):  # withheld or odd caller ids are simply not sent
        body["caller_phone"] = phone
    for key in _TIMES:
        moment: datetime | None = record.get(key)
        if moment is not None:
            body[key] = format_datetime(moment.astimezone(CHINA_TZ))
    handling = handling_org(record.get("jurisdiction"))
    if handling:
        body["handling"] = handling
    if record.get("menu_path"):
        body["menu_path"] = list(record["menu_path"])
    body["recognized_by"] = record.get("recognized_by") or "none"
    outcome = record.get("outcome")
    body["outcome"] = PLATFORM_OUTCOME.get(outcome or "", outcome)
    if record.get("agent_id"):
        body["agent_id"] = record["agent_id"]
    return body
