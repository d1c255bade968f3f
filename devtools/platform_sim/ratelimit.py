"""The platform's rate limit: one token bucket for every sender together.

A real gateway meters before it authenticates, so the bucket is shared rather than per
organisation (the claimed ``X-Org-Code`` is not proven at that point).
"""

from __future__ import annotations

import math
from collections.abc import Callable


class TokenBucket:
    """``rate_per_s`` tokens a second, holding at most ``burst`` (one second's worth by default)."""

    def __init__(self, rate_per_s: float, clock: Callable[[], float], burst: float | None = None) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError("the rate limit must be a positive number of requests per second")
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, rate_per_s if burst is None else burst)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> float:
        """Take one token: 0.0 when granted, else the seconds until one will be there."""
        now = self._clock()
        # A clock that went back (a test's injected clock) refills nothing rather than
        # draining the bucket.
        elapsed = max(0.0, now - self._at)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s
