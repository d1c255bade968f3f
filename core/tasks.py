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
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


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


class BackgroundTasks:
    """Work started behind the call path and not awaited by whoever started it.

    The loop keeps only weak references to tasks, so a task nobody holds may be collected
    half-way: the group holds each until it ends. A task that fails is logged with its name
    (nobody else would ever see its exception); :meth:`close` lets the work under way finish
    for a grace period, then cancels what is left without hanging on it.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: %s failed", self._what, task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float) -> None:
        """Wait until nothing is running (new work started meanwhile included)."""
        while self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            if pending:
                raise TimeoutError(f"{self._what}: {len(pending)} task(s) still running")

    async def close(self, grace_s: float = 0.0) -> None:
        if self._tasks and grace_s > 0:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        await cancel_and_wait(list(self._tasks), what=self._what)
