"""One gate per sender in front of the national platform, shared by every delivery worker of
every process (``hotline serve``'s and any ``hotline outbox work``).

It holds two things the platform says about *all* of our requests, not about one document:

- a **pause**: a ``429``/``503`` with ``Retry-After`` holds for every request of the sender
  (contract 1.0.1, "Back-pressure"), so no request leaves before that moment, whichever
  worker or process got the answer;
- a **halt**: a refusal that is about our configuration, not about a case (``401`` wrong
  secret or organisation, ``403``, ``404``/``405`` wrong URL). Delivery stops for everyone,
  the operators are told what to fix, and one row is tried now and then (a *probe*) until the
  platform accepts us again; then everything that waited is sent.

Why Redis and not the database: every process has Redis through the settings, the gate is
read before every request (the hot path; a Redis round trip is far cheaper than a database
transaction), and Redis keeps the time itself. A pause is a key that expires when the
``Retry-After`` has passed; workers read what is left of it with ``PTTL``, so processes on
hosts whose clocks disagree still wait for the same moment, as Redis counts it. Losing the
keys (a Redis restart) is harmless: the next refusal sets them again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from yarl import URL

from core.settings import PlatformSettings

#: Statuses that say nothing about the document sent: the credentials, the organisation or
#: the URL are wrong, and every other request would get the same answer.
NOT_ABOUT_THE_DOCUMENT = frozenset({401, 403, 404, 405})


@dataclass(frozen=True)
class Halt:
    """Why delivery stopped for everyone, and what the operators should fix."""

    status: int
    #: What the platform said (its problem code and message).
    reason: str
    #: What to change, in the operators' words (settings to check).
    fix: str
    #: When it began (RFC 3339, UTC).
    since: str
    #: The configuration that was refused (:func:`fingerprint`): a process started with
    #: another one probes at once instead of waiting for the next probe.
    config: str
    #: The document whose answer showed it (``case <key>``), for the log.
    document: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Halt:
        doc: dict[str, Any] = json.loads(text)
        return cls(**{k: doc[k] for k in ("status", "reason", "fix", "since", "config", "document") if k in doc})

    def same_fault(self, other: Halt) -> bool:
        return (self.status, self.config) == (other.status, other.config)


class Turn(StrEnum):
    #: Send now.
    GO = "go"
    #: Delivery is halted: do not send.
    HALTED = "halted"
    #: Paused for longer than the caller may wait (its lease would run out): give the row back.
    LATER = "later"


def sender_id(settings: PlatformSettings) -> str:
    """Who the platform meters: our organisation at that platform (host and port)."""
    url = URL(settings.url)
    return f"{settings.org_code}@{url.host}:{url.port}"


def fingerprint(settings: PlatformSettings) -> str:
    """A short digest of what the platform judges us by (URL, organisation, secret), so that a
    corrected configuration is recognised without the secret being stored anywhere."""
    text = "\n".join((settings.url, settings.org_code, settings.secret))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def advice(status: int, settings: PlatformSettings, path: str) -> str:
    """What the operators should fix for a refusal that is not about a document."""
    if status == 401:
        return (f"the platform does not accept our signature: check the organisation code ({settings.org_code}) "
                f"and the shared secret the platform issued (settings [platform] org_code and secret, "
                f"HOTLINE_PLATFORM__ORG_CODE / HOTLINE_PLATFORM__SECRET), and this host's clock "
                f"(a signature is valid for 300 s)")
    if status == 403:
        return (f"the platform refuses organisation {settings.org_code}: check [platform] org_code "
                f"(HOTLINE_PLATFORM__ORG_CODE) or ask the platform's operators to enable it")
    return (f"the platform has no {path} under {settings.url}: check [platform] url (HOTLINE_PLATFORM__URL); "
            f"it is the platform's server URL, e.g. https://platform.example/api, without /v1/...")


class SenderGate(ABC):
    """The gate's operations; :class:`RedisGate` shares them between processes,
    :class:`LocalGate` between the workers of one :class:`~delivery.services.PlatformDelivery`."""

    @abstractmethod
    async def state(self) -> tuple[float, Halt | None]:
        """Seconds the pause has left (0 when none) and the halt, if any."""

    @abstractmethod
    async def pause(self, seconds: float) -> None:
        """No request before ``seconds`` from now; a longer pause already set stays."""

    @abstractmethod
    async def halt(self, halt: Halt) -> Halt | None:
        """Stop delivery for everyone; returns the halt that was there before (``None``: this began it)."""

    @abstractmethod
    async def resume(self) -> Halt | None:
        """Lift the halt; returns it (``None`` when there was none)."""

    @abstractmethod
    async def take_probe(self, config: str, every_s: float) -> bool:
        """Whether the caller may probe now: one probe per configuration every ``every_s``."""

    async def turn(self, *, max_wait_s: float, probe: bool = False) -> tuple[Turn, float]:
        """Wait out the pause (up to ``max_wait_s``) before one request. A probe goes through
        a halt (it is how the halt ends), never through a pause."""
        while True:
            left, halt = await self.state()
            if halt is not None and not probe:
                return Turn.HALTED, 0.0
            if left <= 0:
                return Turn.GO, 0.0
            if left > max_wait_s:
                return Turn.LATER, left
            await asyncio.sleep(left)


class RedisGate(SenderGate):
    """The gate in Redis: ``<prefix>:delivery:gate:<sender>:pause|halt|probe:<config>``."""

    # Only ever lengthened: two answers with different Retry-After, the later moment holds.
    _PAUSE = """
        local left = redis.call('PTTL', KEYS[1])
        local want = tonumber(ARGV[1])
        if left < want then
            redis.call('SET', KEYS[1], '1', 'PX', want)
            return 1
        end
        return 0
    """
    _SWAP = """
        local old = redis.call('GET', KEYS[1])
        redis.call('SET', KEYS[1], ARGV[1])
        return old
    """

    def __init__(self, redis: Redis, prefix: str, settings: PlatformSettings) -> None:
        self._redis = redis
        self._key = f"{prefix}:delivery:gate:{sender_id(settings)}"

    async def state(self) -> tuple[float, Halt | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.pttl(self._key + ":pause")
            pipe.get(self._key + ":halt")
            left_ms, raw = await pipe.execute()
        # -2: no pause; 0 can come back in the key's last millisecond: still paused.
        left = 0.0 if left_ms < 0 else (left_ms + 1) / 1000.0
        return left, Halt.from_json(raw) if raw else None

    async def pause(self, seconds: float) -> None:
        if not (seconds > 0 and math.isfinite(seconds)):
            return
        # Rounded up: waiting a millisecond too long costs nothing, arriving early breaks the contract.
        await self._redis.eval(self._PAUSE, 1, self._key + ":pause", str(math.ceil(seconds * 1000)))

    async def halt(self, halt: Halt) -> Halt | None:
        old = await self._redis.eval(self._SWAP, 1, self._key + ":halt", halt.to_json())
        return Halt.from_json(old) if old else None

    async def resume(self) -> Halt | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._key + ":halt")
            pipe.delete(self._key + ":halt")
            raw, _ = await pipe.execute()
        return Halt.from_json(raw) if raw else None

    async def take_probe(self, config: str, every_s: float) -> bool:
        taken = await self._redis.set(f"{self._key}:probe:{config}", "1", nx=True,
                                      px=max(1, math.ceil(every_s * 1000)))
        return bool(taken)


class LocalGate(SenderGate):
    """The gate in this process's memory: for a delivery without Redis (tests, tools)."""

    def __init__(self) -> None:
        self._pause_until = 0.0
        self._halt: Halt | None = None
        self._probe_at: dict[str, float] = {}

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def state(self) -> tuple[float, Halt | None]:
        return max(0.0, self._pause_until - self._now()), self._halt

    async def pause(self, seconds: float) -> None:
        if seconds > 0 and math.isfinite(seconds):
            self._pause_until = max(self._pause_until, self._now() + seconds)

    async def halt(self, halt: Halt) -> Halt | None:
        old, self._halt = self._halt, halt
        return old

    async def resume(self) -> Halt | None:
        old, self._halt = self._halt, None
        return old

    async def take_probe(self, config: str, every_s: float) -> bool:
        now = self._now()
        if now < self._probe_at.get(config, 0.0):
            return False
        self._probe_at[config] = now + every_s
        return True


__all__ = ["NOT_ABOUT_THE_DOCUMENT", "Halt", "LocalGate", "RedisGate", "SenderGate", "Turn", "advice",
           "fingerprint", "sender_id"]
