"""The words every feature shares: the hotline numbers and their business lines, the levels of
the jurisdiction tree, China time, and now in UTC.

One definition each, so that the dialplan's arguments, the platform contract, the queues and
the reports cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

#: The unified number first, then the four former hotlines that still ring the same system.
HOTLINE_NUMBERS = ("12315", "12365", "12331", "12358", "12330")
BUSINESS_LINES = ("general", "quality", "food_drug", "price", "intellectual_property")
#: Hotline number -> the business line a call to it belongs to.
LINE_OF_NUMBER: Mapping[str, str] = MappingProxyType(dict(zip(HOTLINE_NUMBERS, BUSINESS_LINES, strict=True)))
#: The line each *former* number stands for: 12315 (now the unified number) may carry any line,
#: so only these four are checked against a case's ``business_line``.
BUSINESS_LINE_OF_NUMBER: Mapping[str, str] = MappingProxyType(
    {number: line for number, line in LINE_OF_NUMBER.items() if number != "12315"})

#: The five levels a call can be answered or a case handled at, top first.
HANDLING_LEVELS = ("national", "province", "city", "county", "station")

#: Deadlines, opening hours and reports count in China's calendar (UTC+8, no daylight saving).
CHINA_TZ = timezone(timedelta(hours=8), "CST")


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (what every stored time is)."""
    return datetime.now(UTC)
