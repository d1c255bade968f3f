"""The process's common beat: periodic work that shares its wake-ups."""

from __future__ import annotations

import asyncio

import pytest

from core.beat import sleep_to_the_beat, to_the_beat


async def test_the_wait_ends_on_the_next_multiple_of_the_period_never_later_than_one_period() -> None:
    loop = asyncio.get_running_loop()
    for every in (0.05, 2.0, 4.0, 20.0):
        wait = to_the_beat(every)
        assert 0 < wait <= every
        beats = (loop.time() + wait) / every  # the clock moved on a little since
        assert abs(beats - round(beats)) * every < 0.001


async def test_tasks_of_different_periods_started_apart_wake_together_on_the_longer_period() -> None:
    loop = asyncio.get_running_loop()
    woke: dict[float, list[float]] = {0.1: [], 0.2: []}

    async def periodic(every: float, times: int) -> None:
        for _ in range(times):
            await sleep_to_the_beat(every)
            woke[every].append(loop.time())

    fast = asyncio.create_task(periodic(0.1, 6))
    await asyncio.sleep(0.037)  # the second starts out of step with the first
    await periodic(0.2, 2)
    await fast
    for slow in woke[0.2]:  # each wake of the slower one is a wake of the faster one
        assert min(abs(slow - t) for t in woke[0.1]) < 0.002


async def test_a_period_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        to_the_beat(0.0)
