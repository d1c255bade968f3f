"""The load-shedding decision (calls/overload.py) on a fake clock: when new calls are turned
away, when they are taken again, the clock skew taken off, the metrics and the log lines."""

from __future__ import annotations

import asyncio
import logging

import pytest

from calls.overload import (
    BASELINE_BUCKET_S,
    BASELINE_HOLD_S,
    EVENT_DELAY,
    MAX_CALLS,
    QUIET_S,
    SUMMARY_S,
    OverloadGuard,
    stamp_seconds,
)
from core.metrics import Metrics
from core.settings import OverloadSettings
from devtools.pbx_sim.state import ari_time
from tests.fixtures.waiting import eventually

START = 1_796_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Situation:
    """A guard with a fake clock and a settable number of live calls."""

    def __init__(self, max_calls: int = 10, max_delay: float = 1.0) -> None:
        self.clock = Clock()
        self.live = 0
        self.metrics = Metrics()
        self.guard = OverloadGuard(OverloadSettings(max_calls=max_calls, max_event_delay_s=max_delay),
                                   self.metrics, lambda: self.live, clock=self.clock)

    def call(self, late_s: float = 0.0, skew_s: float = 0.0) -> str | None:
        """A new call whose StasisStart Asterisk stamped ``late_s`` before now (plus its clock's skew)."""
        return self.guard.admit(ari_time(self.clock.now - late_s + skew_s))

    def admitted(self, late_s: float = 0.0, skew_s: float = 0.0) -> bool:
        reason = self.call(late_s, skew_s)
        if reason is None:
            self.live += 1
        return reason is None

    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    def shed(self, reason: str) -> float:
        return self.metrics.value("hotline_calls_shed_total", reason=reason)


def test_asterisks_timestamps_are_read_to_the_millisecond() -> None:
    assert stamp_seconds("2026-12-06T06:07:56.123+0000") == pytest.approx(1_796_537_276.123)
    assert stamp_seconds("2026-12-06T14:07:56.123+0800") == pytest.approx(1_796_537_276.123)
    assert stamp_seconds("") is None and stamp_seconds("yesterday") is None


def test_calls_beyond_max_calls_are_shed_and_taken_again_below_ninety_percent() -> None:
    s = Situation(max_calls=10)
    assert all(s.admitted() for _ in range(10))
    assert s.call() == MAX_CALLS and s.guard.reason == MAX_CALLS
    s.live = 9  # one hung up: still within the hysteresis band (90 % of 10 and above)
    assert s.call() == MAX_CALLS
    s.live = 8
    assert s.call() is None and s.guard.reason is None
    assert s.shed(MAX_CALLS) == 2 and s.shed(EVENT_DELAY) == 0
    assert s.metrics.value("hotline_calls_admitted_total") == 11


def test_no_limit_when_max_calls_is_zero() -> None:
    s = Situation(max_calls=0)
    s.live = 1_000_000
    assert s.call() is None


def test_a_late_stasis_start_starts_shedding_and_it_stops_below_half_the_limit() -> None:
    s = Situation(max_delay=1.0)
    assert s.admitted(late_s=0.01)
    s.wait(1)
    assert s.admitted(late_s=0.9)  # not above the limit
    s.wait(1)
    assert s.call(late_s=1.5) == EVENT_DELAY
    assert s.guard.delay == pytest.approx(1.49, abs=0.002)
    s.wait(1)
    assert s.call(late_s=0.8) == EVENT_DELAY  # better, but not below half: no flapping
    s.wait(1)
    assert s.call(late_s=0.6) == EVENT_DELAY
    s.wait(1)
    assert s.admitted(late_s=0.3)
    assert s.shed(EVENT_DELAY) == 3 and s.metrics.value("hotline_shedding") == 0


def test_a_skewed_clock_on_the_asterisk_host_counts_for_nothing_only_growth_of_the_delay_does() -> None:
    for skew in (-30.0, 45.0):  # Asterisk's clock behind ours, or ahead of it
        s = Situation(max_delay=1.0)
        for _ in range(5):
            assert s.admitted(skew_s=skew)
            s.wait(0.5)
        assert s.guard.delay == pytest.approx(0, abs=0.002)
        assert s.call(late_s=1.2, skew_s=skew) == EVENT_DELAY


def test_the_baseline_follows_a_clock_that_changed_after_a_minute_but_not_while_shedding() -> None:
    s = Situation(max_delay=1.0)
    assert s.admitted()
    # Asterisk's clock was stepped 5 s back, for good: shed at first, ...
    s.wait(1)
    assert s.call(late_s=5) == EVENT_DELAY
    # ... and, while shedding, the baseline holds (an overload that lasts is no new normal) ...
    for _ in range(int(BASELINE_HOLD_S / BASELINE_BUCKET_S) - 2):
        s.wait(BASELINE_BUCKET_S)
        assert s.call(late_s=5) == EVENT_DELAY
    # ... for BASELINE_HOLD_S at most: then the last minute's lowest delay is the baseline.
    for _ in range(8):
        s.wait(BASELINE_BUCKET_S)
        s.call(late_s=5)
    assert s.guard.reason is None and s.admitted(late_s=5)


def test_without_new_calls_shedding_for_the_delay_stops_after_a_quiet_period() -> None:
    s = Situation(max_delay=1.0)
    s.admitted()
    s.wait(1)
    assert s.call(late_s=3) == EVENT_DELAY
    s.wait(QUIET_S - 1)
    s.guard.tick()
    assert s.guard.reason == EVENT_DELAY
    s.wait(1)
    s.guard.tick()
    assert s.guard.reason is None and s.metrics.value("hotline_shedding") == 0


def test_shedding_for_calls_stops_when_calls_end_even_if_no_new_call_comes() -> None:
    s = Situation(max_calls=10)
    s.live = 10
    assert s.call() == MAX_CALLS
    s.live = 5
    s.guard.tick()
    assert s.guard.reason is None


def test_both_reasons_each_counted_under_its_own_name() -> None:
    s = Situation(max_calls=10, max_delay=1.0)
    s.admitted()
    s.live = 10
    assert s.call() == MAX_CALLS
    s.live = 2
    s.wait(1)
    assert s.call(late_s=2) == EVENT_DELAY
    assert (s.shed(MAX_CALLS), s.shed(EVENT_DELAY)) == (1, 1)


def test_the_log_says_once_when_shedding_starts_sums_up_while_it_lasts_and_says_when_it_stops(
    caplog: pytest.LogCaptureFixture
) -> None:
    s = Situation(max_calls=1000)
    s.live = 1000
    with caplog.at_level(logging.DEBUG, logger="calls.overload"):
        for _ in range(25):  # 25 calls turned away over 25 s
            assert s.call() == MAX_CALLS
            s.wait(1)
            s.guard.tick()
        s.live = 10
        s.wait(1)
        assert s.admitted()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "calls.overload"]
    assert lines[0] == (logging.WARNING,
                        "shedding new calls: 1,000 calls in progress (max 1,000); callers hear the busy message")
    summaries = [m for level, m in lines if m.startswith("still shedding")]
    assert len(summaries) == 25 // SUMMARY_S and all(level == logging.INFO for level, m in lines
                                                        if m.startswith("still shedding"))
    assert "10 turned away in the last 10 s, 10 in all; 1,000 calls in progress" in summaries[0]
    level, last = lines[-1]
    assert level == logging.WARNING and last.startswith("stopped shedding new calls after 26 s")
    assert last.endswith("25 turned away in all (25 for max_calls)")
    assert len(lines) == 1 + len(summaries) + 1  # never a line per call


def test_the_warning_for_the_delay_says_how_late_and_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    s = Situation(max_delay=1.0)
    s.admitted()
    s.wait(1)
    with caplog.at_level(logging.WARNING, logger="calls.overload"):
        s.call(late_s=1.4)
    assert caplog.records[-1].getMessage() == \
        "shedding new calls: events 1.4 s behind (max 1.0 s); callers hear the busy message"


def test_the_metrics_of_the_guard_are_served() -> None:
    s = Situation(max_calls=10)
    s.admitted()
    s.live = 10
    s.call()
    text = s.metrics.render()
    assert 'hotline_calls_shed_total{reason="max_calls"} 1\n' in text
    assert 'hotline_calls_shed_total{reason="event_delay"} 0\n' in text
    assert "hotline_shedding 1\n" in text and "hotline_calls_live 10\n" in text
    assert "# TYPE hotline_event_delay_seconds gauge\n" in text


def test_calls_that_could_not_be_sent_to_the_busy_message_make_the_summary_a_warning(
    caplog: pytest.LogCaptureFixture
) -> None:
    s = Situation(max_calls=1)
    s.live = 1
    with caplog.at_level(logging.INFO, logger="calls.overload"):
        for _ in range(3):
            assert s.call() == MAX_CALLS
            s.guard.not_turned_away()
        s.wait(SUMMARY_S)
        s.guard.tick()
    summary = caplog.records[-1]
    assert summary.levelno == logging.WARNING
    assert summary.getMessage().endswith("3 could not be sent to the busy message (ARI failed) and were hung up")
    assert s.metrics.value("hotline_calls_shed_failed_total") == 3


async def test_the_guard_ticks_while_it_sheds_and_sleeps_between_episodes() -> None:
    """A tick has nothing to do while calls are taken: the guard does not wake up for it."""
    s = Situation(max_calls=10)
    ticks: list[float] = []
    tick = s.guard.tick

    def counted() -> None:
        ticks.append(s.clock())
        tick()

    s.guard.tick = counted  # type: ignore[method-assign]
    runner = asyncio.create_task(s.guard.run(every_s=0.01))
    try:
        await asyncio.sleep(0.1)
        assert ticks == []
        s.live = 10
        assert s.call() == MAX_CALLS
        s.live = 5  # calls ended: the next tick ends the episode, no new call needed

        async def stopped() -> bool:
            return s.guard.reason is None

        await eventually(stopped)
        after = len(ticks)
        await asyncio.sleep(0.1)
        assert after >= 1 and len(ticks) == after
    finally:
        runner.cancel()
