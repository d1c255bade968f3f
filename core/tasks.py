"""Stopping background tasks without ever hanging on one.

``task.cancel()`` followed by ``gather`` waits for ever if the task loses the cancellation:
a ``while True`` loop whose ``except Exception`` catches a ``TimeoutError`` that a timeout
raised in the same instant as the cancel (Python 3.11's ``wait_for`` and ``async_timeout``
both have such races) goes round again as if nothing happened. Here the cancel is repeated
until the task ends, and a task that still will not end is named in the log and left behind
rather than freezing shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, timeout: float = 5.0,
                          what: str = "background tasks") -> None:
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            names = ", ".join(sorted(t.get_name() for t in pending))
            log.error("stopping %s: %d task(s) would not end, left behind: %s", what, len(pending), names)
            return
        _done, pending = await asyncio.wait(pending, timeout=min(0.25, remaining))


async def until_signalled() -> None:
    """Return on SIGINT or SIGTERM: how every long-running ``hotline`` command waits to stop."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
