"""The last moment we knew our calls were alive in Asterisk, kept where a restarted process
reads it.

ARI replays nothing: a call that ended while we were not listening is only found gone at
the next resync. Its record must not end then (minutes or hours later) but at the last moment
we knew it was alive: when this process lost the events WebSocket
(:attr:`ari.events.EventStream.lost_at`), or, when the process itself died, the
last heartbeat it wrote here while connected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.beat import sleep_to_the_beat
from core.vocabulary import utcnow

log = logging.getLogger(__name__)

#: Seconds between heartbeats: how much earlier than the truth a crashed process's calls may
#: be said to end, at most. The process's common beat (core.beat): each beat wakes an idle
#: process, and on a virtual host a wake-up after two seconds asleep costs 1-1.5 ms of CPU (its
#: caches are cold), so the beat is as long as what it bounds allows (issue 15: 2 s before).
HEARTBEAT_S = 4.0



class Liveness:
    """A heartbeat in Redis while the events WebSocket is connected."""

    def __init__(self, redis: Redis, prefix: str, *, interval_s: float = HEARTBEAT_S,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._redis = redis
        # The key's name predates the call core: a process of this version reads the heartbeat
        # of an older one.
        self._key = f"{prefix}:ivr:alive"
        self._interval = interval_s
        self._clock = clock

    async def beat(self) -> None:
        await self._redis.set(self._key, self._clock().isoformat())

    async def last(self) -> datetime | None:
        """The last heartbeat written (by this process or one before it); None if never."""
        raw = await self._redis.get(self._key)
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
        except ValueError:
            log.warning("unreadable heartbeat %r in %s: ignored", raw, self._key)
            return None

    async def run(self, connected: asyncio.Event) -> None:
        """Beat while ``connected`` is set (until cancelled). Only a connected process knows
        its calls are alive: while reconnecting it does not beat. Beats fall on the process's
        common beat (core.beat), with its other periodic work."""
        while True:
            await connected.wait()
            try:
                await self.beat()
            except RedisError as exc:
                log.warning("heartbeat not written: %s", exc)
            await sleep_to_the_beat(self._interval)

    async def gone_since(self, lost_at: datetime | None) -> datetime | None:
        """When calls found gone at a resync were last known alive: the moment this process
        lost the connection, else the last heartbeat (a process that died before us)."""
        if lost_at is not None:
            return lost_at
        try:
            return await self.last()
        except RedisError as exc:
            log.warning("heartbeat not read: %s", exc)
            return None
