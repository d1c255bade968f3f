"""Redis helpers for tests: what a piece of code sends to Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis

#: What a spy is told: a command sent alone (its arguments), or a pipeline about to be made or run.
Spy = Callable[..., None]


@contextmanager
def _spied(redis: Redis, alone: Spy, piped: Callable[[Any], Any]) -> Iterator[None]:
    """``redis.execute_command`` and ``redis.pipeline`` wrapped for the block: ``alone(*args)`` before
    each command sent by itself, ``piped(pipe)`` with each new pipeline (it returns the pipe to use)."""
    execute, pipeline = redis.execute_command, redis.pipeline

    async def command(*args: Any, **options: Any) -> Any:
        alone(*args)
        return await execute(*args, **options)

    def new_pipeline(*args: Any, **options: Any) -> Any:
        return piped(pipeline(*args, **options))

    redis.execute_command = command  # type: ignore[method-assign]
    redis.pipeline = new_pipeline  # type: ignore[method-assign]
    try:
        yield
    finally:
        del redis.execute_command, redis.pipeline


@contextmanager
def redis_commands_counted(redis: Redis) -> Iterator[list[str]]:
    """The names of the commands ``redis`` sends inside the block (a pipeline counts as
    ``pipeline``): for tests that some path costs no Redis round trip at all."""
    sent: list[str] = []

    def piped(pipe: Any) -> Any:
        sent.append("pipeline")
        return pipe

    with _spied(redis, lambda *args: sent.append(str(args[0]).lower()), piped):
        yield sent


@contextmanager
def redis_round_trips(redis: Redis) -> Iterator[list[list[str]]]:
    """Each round trip ``redis`` makes inside the block, as the commands it carried."""
    trips: list[list[str]] = []

    def piped(pipe: Any) -> Any:
        run = pipe.execute

        async def counted(*a: Any, **kw: Any) -> Any:
            trips.append([str(command[0]).lower() for command, _ in pipe.command_stack])
            return await run(*a, **kw)

        pipe.execute = counted
        return pipe

    with _spied(redis, lambda *args: trips.append([str(args[0]).lower()]), piped):
        yield trips
