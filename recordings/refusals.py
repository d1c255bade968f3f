"""Anonymous refusals of recordings' audio, counted per minute in Redis, not audited one by one.

A request without a session names nobody: an audit row for each would let anyone fill the
audit table (and bury the rows that matter) with a loop of requests. They are counted instead,
one Redis counter per minute kept for a day, and the first of each minute is logged as a
sample (what was asked, from where), so that a flood is visible without writing a row per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: How long each minute's count is kept.
KEEP_S = 24 * 3600


class AnonymousRefusals:
    def __init__(self, redis: Redis, prefix: str, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self._prefix = f"{prefix}:recordings:anonymous-refusals"
        self._clock = clock

    async def count(self, asked: str, client: str | None) -> None:
        """Count one refusal; log it when it is the first of its minute."""
        key = f"{self._prefix}:{int(self._clock() // 60)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, KEEP_S)
            n, _ = await pipe.execute()
        if int(n) == 1:
            log.warning("recording audio refused to a request without a session (asked %r from %s); "
                        "the others of this minute are only counted", asked[:80], client or "?")

    async def recent(self, minutes: int = 60) -> list[dict[str, object]]:
        """The last ``minutes`` minutes with refusals, oldest first: ``{"minute", "count"}``."""
        now = int(self._clock() // 60)
        slots = list(range(now - minutes + 1, now + 1))
        counts = await self.redis.mget([f"{self._prefix}:{m}" for m in slots])
        return [{"minute": datetime.fromtimestamp(m * 60, UTC).isoformat(), "count": int(c)}
                for m, c in zip(slots, counts, strict=True) if c]
