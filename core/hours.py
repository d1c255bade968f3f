"""Opening hours of the answering centre: when a call is queued, and when it hears the
after-hours message instead."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")


def parse_hhmm(text: str, what: str) -> time | None:
    """``"08:30"`` -> 08:30; ``"24:00"`` -> None (the end of the day)."""
    if not _HHMM.fullmatch(text):
        raise ValueError(f"{what} must be HH:MM (00:00 to 24:00), got {text!r}")
    if text == "24:00":
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai)") from None
    return name


def is_open(now: datetime, *, timezone: str, days: list[int], opens: str, closes: str) -> bool:
    """Whether ``now`` (timezone-aware) falls in the opening hours; days are 1 (Monday) to 7."""
    local = now.astimezone(ZoneInfo(timezone))
    if local.isoweekday() not in days:
        return False
    start, end = parse_hhmm(opens, "opens") or time(0), parse_hhmm(closes, "closes")
    return start <= local.time() and (end is None or local.time() < end)
