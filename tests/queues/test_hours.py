"""Opening hours: when calls are queued and when callers hear the after-hours message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.hours import is_open
from core.settings import OpeningHours

WEEKDAYS = [1, 2, 3, 4, 5]


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """Nov 2026: the 23rd is a Monday; Shanghai is UTC+8."""
    return datetime(2026, 11, 22 + day, hour - 8 if hour >= 8 else hour + 16, minute,
                    tzinfo=UTC).replace(day=22 + day if hour >= 8 else 21 + day)


@pytest.mark.parametrize(("day", "hour", "minute", "open_"), [
    (1, 8, 29, False), (1, 8, 30, True), (3, 12, 0, True), (5, 17, 29, True), (5, 17, 30, False),
    (6, 10, 0, False), (7, 10, 0, False),
])
def test_a_weekday_centre_is_open_from_half_past_eight_to_half_past_five_shanghai_time(
    day: int, hour: int, minute: int, open_: bool
) -> None:
    now = shanghai(day, hour, minute)
    assert is_open(now, timezone="Asia/Shanghai", days=WEEKDAYS, opens="08:30", closes="17:30") is open_


def test_the_default_is_open_around_the_clock() -> None:
    hours = OpeningHours()
    for hour in (0, 3, 12, 23):
        assert is_open(shanghai(7, hour), timezone=hours.timezone, days=hours.days, opens=hours.opens,
                       closes=hours.closes)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("timezone", "Asia/Peking", "unknown time zone"),
    ("opens", "8:30", "HH:MM"),
    ("closes", "25:00", "HH:MM"),
    ("days", [0, 8], "ISO weekdays"),
])
def test_bad_opening_hours_are_refused_with_a_clear_error(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpeningHours(**{field: value})
