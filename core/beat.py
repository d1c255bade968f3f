"""One beat for the process's periodic work, so that an idle process wakes once, not once per task.

Why (issue 15): an idle ``hotline serve`` woke about 2.5 times a second (the liveness heartbeat
every 2 s, the look at due wrap-ups every 2 s, the figures' check for a wallboard every 4 s, each
a timer and then a Redis reply), and each wake-up of a process that slept costs far more than
the Python it runs (cold caches: 0.5-0.8 ms of CPU, measured by the scheduler's own
accounting). Idle, that was 2.2 ms of CPU a second, a quarter of a call's cost at 1 call/s.
A task that sleeps until the next multiple of its period on the event loop's clock instead
of a period from now shares its wake-up with every other task that does: their timers fall
due at the same instant, run in the same turn of the loop, and their Redis commands leave
together. Periods that are multiples of one another share every beat of the longer one.
"""

from __future__ import annotations

import asyncio


def to_the_beat(every_s: float, loop: asyncio.AbstractEventLoop | None = None) -> float:
    """Seconds from now to the next multiple of ``every_s`` on the loop's clock: more than 0,
    at most ``every_s``."""
    if every_s <= 0:
        raise ValueError(f"a beat's period is above 0 s, got {every_s}")
    now = (loop or asyncio.get_running_loop()).time()
    return every_s - now % every_s


async def sleep_to_the_beat(every_s: float) -> None:
    """Sleep until the next multiple of ``every_s`` on the loop's clock (at most ``every_s``)."""
    await asyncio.sleep(to_the_beat(every_s))
