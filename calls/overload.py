"""Load shedding: whether a new call is taken or turned away, and saying so.

Beyond what the process can hold, calls would otherwise fail at random: events handled late,
requests timing out, callers left in silence (issue 15: at 250 concurrent calls on 2 cores the
application fell behind its events and Asterisk queued 500 of them). Instead, a new call is
turned away on purpose, at its ``StasisStart``, while either

* ``max_calls`` calls are in progress in this process (``[overload] max_calls``), or
* the application is behind its events: it handles a ``StasisStart`` more than
  ``max_event_delay_s`` after Asterisk stamped it, above the running baseline.

Calls already in progress are never shed. The caller is sent to the dialplan's
``[hotline-shed]`` (a busy message, a marked CDR) by the IVR's handler (:mod:`ivr.stasis`);
nothing of the call is kept here or in Redis.

**Why the delay of StasisStart.** A new channel's StasisStart opens a FIFO of its own in the
dispatcher, so the time between Asterisk's stamp and our handler is the backlog of the whole
application (Asterisk's queue of events for it, the WebSocket, our event loop), never one slow
call's request holding up the events behind it. It is also the moment of the decision. So the
measure is taken there: one parse of the stamp and a subtraction per new call.

**Clock skew.** Asterisk may run on another host whose clock is off by any amount: the raw
delay is corrected by a baseline, the smallest delay seen over the last minute (in 10-second
buckets: two comparisons per call). Only growth of the delay counts. While shedding, the
baseline does not rise (an overload that lasts must not become the new normal), for at most
:data:`BASELINE_HOLD_S`, after which a stepped clock stops counting as a delay.

**Hysteresis.** Shedding starts when either measure reaches its limit and stops when both
are back below :data:`RESUME_CALLS` of ``max_calls`` and :data:`RESUME_DELAY` of
``max_event_delay_s``, or when no new call has come for :data:`QUIET_S` while the delay was
the reason (nothing to measure it by then). Between the two marks, new calls are still shed.

**Saying so.** Metrics (``hotline_calls_shed_total{reason}``, ``hotline_shedding``,
``hotline_event_delay_seconds``, ...) and logs: one WARNING when shedding starts and why, a
summary every :data:`SUMMARY_S` while it lasts, one WARNING when it stops with the total. A
shed call itself is logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from core.metrics import Metrics
from core.settings import OverloadSettings

log = logging.getLogger(__name__)

#: Shedding for the number of calls stops below this share of ``max_calls``.
RESUME_CALLS = 0.9
#: Shedding for the event delay stops below this share of ``max_event_delay_s``.
RESUME_DELAY = 0.5
#: While the delay was the reason and no new call came for this long, shedding stops.
QUIET_S = 10.0
#: At most one summary line this often while shedding lasts.
SUMMARY_S = 10.0
#: The baseline is the smallest delay of BASELINE_BUCKETS buckets of BASELINE_BUCKET_S seconds.
BASELINE_BUCKET_S = 10.0
BASELINE_BUCKETS = 6
#: How long the baseline is kept from rising while shedding.
BASELINE_HOLD_S = 300.0

MAX_CALLS = "max_calls"
EVENT_DELAY = "event_delay"
REASONS = (MAX_CALLS, EVENT_DELAY)


def stamp_seconds(timestamp: str) -> float | None:
    """Asterisk's ``2026-12-06T06:07:56.123+0000`` as seconds since the epoch (None: no stamp)."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


class DelayBaseline:
    """The smallest delay seen over the last minute or so, by buckets of 10 s: a clock skew
    between Asterisk's host and ours, whatever its sign, and the network's own latency."""

    __slots__ = ("_buckets", "_bucket", "_bucket_min", "value", "_frozen_since")

    def __init__(self) -> None:
        #: (bucket number, smallest delay in it) of the past buckets, oldest first.
        self._buckets: list[tuple[int, float]] = []
        self._bucket = -1
        self._bucket_min = 0.0
        #: The baseline now (None until the first delay).
        self.value: float | None = None
        self._frozen_since: float | None = None

    def add(self, now: float, delay: float) -> None:
        bucket = int(now // BASELINE_BUCKET_S)
        if bucket == self._bucket:
            if delay < self._bucket_min:
                self._bucket_min = delay
                if self.value is None or delay < self.value:
                    self.value = delay
            return
        # A new bucket (at most once per 10 s): the old one joins the past, the oldest leave.
        if self._bucket >= 0:
            self._buckets.append((self._bucket, self._bucket_min))
        self._bucket, self._bucket_min = bucket, delay
        frozen = self._frozen_since is not None and now - self._frozen_since < BASELINE_HOLD_S
        if not frozen:
            self._buckets = [(b, m) for b, m in self._buckets if b > bucket - BASELINE_BUCKETS]
        lowest = min([delay, *(m for _, m in self._buckets)])
        self.value = lowest if not frozen or self.value is None else min(self.value, lowest)

    def freeze(self, now: float | None) -> None:
        """Keep the baseline from rising from ``now`` on (None: let it follow the delays again)."""
        self._frozen_since = now


class OverloadGuard:
    """Decides, per new call, whether it is taken; keeps the metrics and writes the log lines.

    ``live_calls``: how many calls are in progress in this process (the call core's flows).
    ``clock``: seconds since the epoch (``time.time``), the clock Asterisk's stamps compare with.
    """

    def __init__(self, settings: OverloadSettings, metrics: Metrics, live_calls: Callable[[], int], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_calls = settings.max_calls
        self.max_delay = settings.max_event_delay_s
        self._live = live_calls
        self._clock = clock
        self.baseline = DelayBaseline()
        #: The corrected delay of the last new call's StasisStart.
        self.delay = 0.0
        #: Why shedding goes on (None: calls are taken).
        self.reason: str | None = None
        #: Set while shedding: only then has :meth:`run` anything to tick.
        self._episode = asyncio.Event()
        self._since = 0.0
        self._last_call_at = 0.0
        self._summary_at = 0.0
        self._shed_since_summary = 0
        self._failed_since_summary = 0
        self._shed_in_episode = {reason: 0 for reason in REASONS}
        self.calls_admitted = metrics.counter("hotline_calls_admitted_total",
                                              "New calls taken by the application (not shed).")
        self.calls_shed = {reason: metrics.counter(
            "hotline_calls_shed_total", "New calls turned away to the busy message, by why.", reason=reason)
            for reason in REASONS}
        self.shedding = metrics.gauge("hotline_shedding", "1 while new calls are turned away, else 0.")
        self.shed_failed = metrics.counter(
            "hotline_calls_shed_failed_total",
            "Calls turned away that could not be sent to the busy message (ARI failed): hung up busy.")
        metrics.read("hotline_calls_live", "gauge", "Calls in progress in this process.",
                     lambda: self._live())
        metrics.read("hotline_event_delay_seconds", "gauge",
                     "How late the last new call's StasisStart was handled, above the baseline.",
                     lambda: self.delay)
        metrics.read("hotline_event_delay_baseline_seconds", "gauge",
                     "The smallest delay of the last minute (clock skew and latency), taken off.",
                     lambda: self.baseline.value or 0.0)
        metrics.read("hotline_overload_max_calls", "gauge", "[overload] max_calls (0: no limit).",
                     lambda: self.max_calls)
        metrics.read("hotline_overload_max_event_delay_seconds", "gauge",
                     "[overload] max_event_delay_s (0: not a reason).", lambda: self.max_delay)

    # --- the decision -----------------------------------------------------------------------------

    def admit(self, timestamp: str) -> str | None:
        """A new call's StasisStart, stamped ``timestamp`` by Asterisk, is being handled: None to
        take the call, or why it is turned away (``max_calls`` or ``event_delay``)."""
        now = self._clock()
        self._last_call_at = now
        sent = stamp_seconds(timestamp)
        if sent is not None:
            raw = now - sent
            self.baseline.add(now, raw)
            base = self.baseline.value
            self.delay = max(0.0, raw - base) if base is not None else 0.0
        live = self._live()
        over_calls = 0 < self.max_calls <= live
        over_delay = 0 < self.max_delay < self.delay
        if self.reason is None:
            if not (over_calls or over_delay):
                self.calls_admitted.inc()
                return None
            self._start(now, MAX_CALLS if over_calls else EVENT_DELAY, live)
        elif not self._still_over(live):
            self._stop(now)
            self.calls_admitted.inc()
            return None
        reason = MAX_CALLS if over_calls else EVENT_DELAY if over_delay else self.reason
        assert reason is not None
        self.calls_shed[reason].inc()
        self._shed_in_episode[reason] += 1
        self._shed_since_summary += 1
        return reason

    def not_turned_away(self) -> None:
        """A call shed could not be sent to the busy message (ARI failed): counted, and said in
        the summaries, never a line per call."""
        self.shed_failed.inc()
        self._failed_since_summary += 1

    def _still_over(self, live: int) -> bool:
        calls = 0 < self.max_calls and live >= self.max_calls * RESUME_CALLS
        delay = 0 < self.max_delay and self.delay >= self.max_delay * RESUME_DELAY
        return calls or delay

    # --- the episode and its log lines -----------------------------------------------------------

    def _start(self, now: float, reason: str, live: int) -> None:
        self.reason = reason
        self._episode.set()
        self._since = self._summary_at = now
        self._shed_since_summary = self._failed_since_summary = 0
        self._shed_in_episode = {r: 0 for r in REASONS}
        self.shedding.set(1)
        self.baseline.freeze(now)
        if reason == MAX_CALLS:
            why = f"{live:,} calls in progress (max {self.max_calls:,})"
        else:
            why = f"events {self.delay:.1f} s behind (max {self.max_delay:.1f} s)"
        log.warning("shedding new calls: %s; callers hear the busy message", why)

    def _stop(self, now: float, *, quiet: bool = False) -> None:
        total = sum(self._shed_in_episode.values())
        by = ", ".join(f"{n:,} for {r}" for r, n in self._shed_in_episode.items() if n)
        after = f"no new call for {QUIET_S:.0f} s" if quiet else \
            f"{self._live():,} calls in progress, events {self.delay:.1f} s behind"
        log.warning("stopped shedding new calls after %.0f s (%s): %s turned away in all%s",
                    now - self._since, after, f"{total:,}", f" ({by})" if by else "")
        self.reason = None
        self._episode.clear()
        self.shedding.set(0)
        self.baseline.freeze(None)

    def tick(self) -> None:
        """Run every second or so: the summary while shedding, and its end when nothing comes
        any more to measure (calls ending lower the count; no new call, no new delay)."""
        if self.reason is None:
            return
        now = self._clock()
        live = self._live()
        if not self._still_over(live):
            self._stop(now)
            return
        calls_over = 0 < self.max_calls and live >= self.max_calls * RESUME_CALLS
        if not calls_over and now - self._last_call_at >= QUIET_S:
            self.delay = 0.0  # nothing measured since: what was late is not any more
            self._stop(now, quiet=True)
            return
        if now - self._summary_at >= SUMMARY_S:
            failed = self._failed_since_summary
            log.log(logging.WARNING if failed else logging.INFO,
                    "still shedding new calls (%.0f s so far): %s turned away in the last %.0f s, %s in all; "
                    "%s calls in progress, events %.1f s behind%s", now - self._since,
                    f"{self._shed_since_summary:,}", now - self._summary_at,
                    f"{sum(self._shed_in_episode.values()):,}", f"{live:,}", self.delay,
                    f"; {failed:,} could not be sent to the busy message (ARI failed) and were hung up"
                    if failed else "")
            self._summary_at = now
            self._shed_since_summary = self._failed_since_summary = 0

    async def run(self, every_s: float = 1.0) -> None:
        """:meth:`tick` every ``every_s`` while shedding, until cancelled. Between episodes it
        sleeps until one starts: a tick a second with nothing to do was the most frequent timer
        of an idle process (the heartbeat and the due loop wake it once a beat, core.beat; issue 15)."""
        while True:
            await self._episode.wait()
            await asyncio.sleep(every_s)
            self.tick()
