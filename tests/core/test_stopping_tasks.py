"""Shutting down never hangs on a background task that loses its cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.tasks import BackgroundTasks, cancel_and_wait


async def test_a_loop_that_swallows_one_cancel_is_cancelled_again_and_ends() -> None:
    swallowed = 0

    async def careless_loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a TimeoutError racing the cancel would make it do

    task = asyncio.create_task(careless_loop())
    await asyncio.sleep(0)
    await cancel_and_wait([task], timeout=2)
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_never_ends_is_named_in_the_log_and_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(stubborn(), name="stubborn-worker")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        # It gives up after its own timeout: the outer bound only turns a hang into a failure.
        await asyncio.wait_for(cancel_and_wait([task], timeout=0.3, what="the test's tasks"), 10)
    assert "stubborn-worker" in caplog.text and not task.done()
    task.get_coro().close()  # type: ignore[union-attr]


async def test_background_work_that_fails_is_logged_with_its_name(caplog: pytest.LogCaptureFixture) -> None:
    tasks = BackgroundTasks("the test's work")

    async def broken() -> None:
        raise RuntimeError("disk full")

    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        tasks.spawn(broken(), "store-recording-7")
        await tasks.drain(timeout=1.0)
    assert "the test's work: store-recording-7 failed" in caplog.text and len(tasks) == 0


async def test_closing_lets_work_finish_within_its_grace_then_cancels_the_rest() -> None:
    tasks = BackgroundTasks("the test's work")
    finished = asyncio.Event()

    async def quick() -> None:
        await asyncio.sleep(0.01)
        finished.set()

    endless = tasks.spawn(asyncio.sleep(3600), "endless")
    tasks.spawn(quick(), "quick")
    await tasks.close(grace_s=0.2)
    assert finished.is_set() and endless.cancelled()
