"""Clocks that tests move by hand, one per unit the product's parts read time in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from core.vocabulary import CHINA_TZ
from national.contract import format_datetime

#: Monday 24 November 2026, 10:00 in Beijing: an ordinary working morning.
WORKING_MORNING = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


class Clock:
    """A ``datetime`` clock (the outbox's and the ticket service's), UTC."""

    def __init__(self, start: datetime = WORKING_MORNING) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """``advance(30)`` or ``advance(days=1)``."""
        self.now += timedelta(seconds=seconds, **delta)


class MillisClock:
    """The queue engine's clock: epoch milliseconds."""

    def __init__(self, start_ms: int = 1_790_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


class EpochClock:
    """The national platform's clock: epoch seconds (starts at the real time, since the
    platform checks signatures' timestamps against it)."""

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


class SkewedClock:
    """The platform's clock, ``behind_s`` seconds behind ours."""

    def __init__(self) -> None:
        self.behind_s = 0.0

    def __call__(self) -> float:
        return time.time() - self.behind_s
