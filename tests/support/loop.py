"""Watching the event loop: work that must not block it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class Ticks:
    """How many times a ticker woke while the loop was free to run it."""

    count: int = 0


@asynccontextmanager
async def loop_ticks(every_s: float) -> AsyncIterator[Ticks]:
    """Counts the ticker's wake-ups (one every ``every_s``) for the block's duration: work that
    blocks the loop leaves the count near zero."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            await asyncio.sleep(every_s)
            ticks.count += 1

    ticker = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        ticker.cancel()
