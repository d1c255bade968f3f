"""What the queue engine's tests share: a clock they move by hand (the Redis client is the shared
``redis`` fixture of ``tests/fixtures/servers.py``)."""

from __future__ import annotations

import pytest


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self, start_ms: int = 1_790_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()
