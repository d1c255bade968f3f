"""What can go wrong between a hotline centre and the national platform, on purpose.

:class:`Faults` is the configuration (a plain value, JSON in and out, so that ``PUT
/sim/faults`` and the CLI can set it); :class:`FaultInjector` applies it with a seeded RNG
so that a test sees the same faults on every run.

**Time.** Every duration here (``latency_s``, ``retry_after_s``, outage lengths) is in
*platform* seconds; the stand-in waits ``duration * time_scale`` real seconds. With
``time_scale=0.01`` a 10-minute outage lasts 6 real seconds and its ``Retry-After`` says
``6``: senders live in real time, so the header must speak real seconds too, or a sender
obeying it would wait the uncompressed 600 s. The contract wants an integer of at least 1,
so a scaled wait shorter than a second is announced as ``1`` (rounded up, never down: a
sender that waits what it was told must not arrive before the platform is back). Below one
second, compression therefore stops at the header, not at the platform.

**Where faults strike.** Latency, outages and random failures happen *before*
authentication, as at a real gateway or load balancer that answers for a backend in
maintenance or overload without looking at signatures; they neither spend the request's
nonce nor store anything. The one exception is deliberate: a share of dropped connections
(``drop_after_store_share``) happens *after* the request was processed, so the sender sees a
failure although the platform has the case. Its resend must come back as a replay, never
as a second case.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

#: Statuses a random failure may take. 503 and 429 carry ``Retry-After`` (the contract's
#: ``Busy`` answer); 500, 502 and 408 do not. All of them tell a sender to try again.
RETRYABLE_STATUSES = (500, 502, 503, 429, 408)


class OutageMode(StrEnum):
    #: Answer ``503`` with ``Retry-After`` until the outage ends (announced maintenance).
    UNAVAILABLE = "503"
    #: Close every connection without an answer (a platform that is simply gone).
    DROP = "drop"


@dataclass(frozen=True)
class Faults:
    """The fault configuration. All durations are platform seconds (see the module doc)."""

    #: Fraction of requests answered with a random retryable failure.
    error_rate: float = 0.0
    #: Which statuses those failures take (drawn uniformly).
    error_statuses: tuple[int, ...] = RETRYABLE_STATUSES
    #: Fraction of requests whose connection is closed without an answer.
    drop_rate: float = 0.0
    #: Of those drops, the fraction that happens after the request was processed (stored).
    drop_after_store_share: float = 0.5
    #: Each request is delayed by a uniform draw from this range.
    latency_s: tuple[float, float] = (0.0, 0.0)
    #: What a random ``429``/``503`` asks the sender to wait.
    retry_after_s: float = 1.0
    #: How an outage answers.
    outage_mode: OutageMode = OutageMode.UNAVAILABLE
    #: Real seconds per platform second.
    time_scale: float = 1.0
    #: Seed of the RNG; the same seed and the same request order give the same faults.
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "drop_after_store_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.error_rate + self.drop_rate > 1.0:
            raise ValueError("error_rate + drop_rate must not exceed 1")
        if not self.error_statuses:
            raise ValueError("error_statuses must name at least one status")
        unknown = sorted(set(self.error_statuses) - set(RETRYABLE_STATUSES))
        if unknown:
            raise ValueError(f"error_statuses may only be {list(RETRYABLE_STATUSES)}, not {unknown}")
        low, high = self.latency_s
        if not 0.0 <= low <= high or not math.isfinite(high):
            raise ValueError(f"latency_s must be a range 0 <= min <= max, got {list(self.latency_s)}")
        if not (self.retry_after_s > 0 and math.isfinite(self.retry_after_s)):
            raise ValueError("retry_after_s must be a positive number of seconds")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError("time_scale must be a positive number")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Faults:
        """Read a JSON object (``PUT /sim/faults``); unknown keys and wrong types are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"unknown fault settings {unknown}; known are {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in doc.items():
            values[name] = _coerce(name, value)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["error_statuses"] = list(self.error_statuses)
        doc["latency_s"] = list(self.latency_s)
        doc["outage_mode"] = self.outage_mode.value
        return doc


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _coerce(name: str, value: Any) -> Any:
    if name in ("error_rate", "drop_rate", "drop_after_store_share", "retry_after_s", "time_scale"):
        return _number(name, value)
    if name == "latency_s":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (float(value), float(value))
        if isinstance(value, list) and len(value) == 2:
            return (_number(name, value[0]), _number(name, value[1]))
        raise ValueError("latency_s must be a number or [min, max]")
    if name == "error_statuses":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError("error_statuses must be a list of HTTP statuses")
        return tuple(value)
    if name == "outage_mode":
        try:
            return OutageMode(str(value))
        except ValueError:
            raise ValueError(f"outage_mode must be one of {[m.value for m in OutageMode]}") from None
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError("seed must be an integer or null")
        return value
    raise AssertionError(name)  # pragma: no cover - from_json checked the names


def retry_after_header(real_seconds: float) -> str:
    """An integer of at least 1, rounded up (see the module doc)."""
    return str(max(1, math.ceil(real_seconds - 1e-9)))


class FaultKind(StrEnum):
    LATENCY = "latency"
    ERROR = "error"
    DROP_BEFORE = "drop_before_store"
    DROP_AFTER = "drop_after_store"
    OUTAGE = "outage"


@dataclass(frozen=True, slots=True)
class Strike:
    """One fault decided for one request."""

    kind: FaultKind
    status: int | None = None
    #: Real seconds the answer's ``Retry-After`` announces (429/503 only).
    retry_after_real_s: float | None = None


class FaultInjector:
    """Applies :class:`Faults` to requests, and keeps the outage window."""

    def __init__(self, faults: Faults | None = None, clock: Callable[[], float] = time.time) -> None:
        self.faults = faults or Faults()
        self._clock = clock
        self._rng = random.Random(self.faults.seed)
        self._outage_until: float | None = None

    def configure(self, faults: Faults) -> None:
        """Replace the configuration (and restart the RNG from its seed); an outage stays."""
        self.faults = faults
        self._rng = random.Random(faults.seed)

    # ----------------------------------------------------------------- outages

    def start_outage(self, duration_s: float) -> None:
        """The platform is down for ``duration_s`` platform seconds from now."""
        if not (duration_s > 0 and math.isfinite(duration_s)):
            raise ValueError("an outage lasts a positive number of seconds")
        self._outage_until = self._clock() + duration_s * self.faults.time_scale

    def end_outage(self) -> None:
        self._outage_until = None

    def outage_remaining_real_s(self) -> float:
        """Real seconds until the current outage ends; 0 when there is none."""
        if self._outage_until is None:
            return 0.0
        remaining = self._outage_until - self._clock()
        if remaining <= 0:
            self._outage_until = None
            return 0.0
        return remaining

    # ----------------------------------------------------------------- per request

    def latency_real_s(self) -> float:
        low, high = self.faults.latency_s
        if high <= 0:
            return 0.0
        return self._rng.uniform(low, high) * self.faults.time_scale

    def decide(self) -> Strike | None:
        """The fault for one request that got past latency, or ``None``."""
        remaining = self.outage_remaining_real_s()
        if remaining > 0:
            if self.faults.outage_mode is OutageMode.DROP:
                return Strike(FaultKind.OUTAGE)
            return Strike(FaultKind.OUTAGE, 503, remaining)
        faults = self.faults
        if faults.error_rate <= 0 and faults.drop_rate <= 0:
            return None
        draw = self._rng.random()
        if draw < faults.drop_rate:
            after = self._rng.random() < faults.drop_after_store_share
            return Strike(FaultKind.DROP_AFTER if after else FaultKind.DROP_BEFORE)
        if draw < faults.drop_rate + faults.error_rate:
            status = self._rng.choice(faults.error_statuses)
            wait = faults.retry_after_s * faults.time_scale if status in (429, 503) else None
            return Strike(FaultKind.ERROR, status, wait)
        return None
