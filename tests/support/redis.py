"""Redis helpers for tests: what a piece of code sends to Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis


@contextmanager
def redis_commands_counted(redis: Redis) -> Iterator[list[str]]:
    """The names of the commands ``redis`` sends inside the block (a pipeline counts as
    ``pipeline``): for tests that some path costs no Redis round trip at all."""
    sent: list[str] = []
    execute, pipeline = redis.execute_command, redis.pipeline

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).lower())
        return await execute(*args, **options)

    def counted_pipeline(*args: Any, **options: Any) -> Any:
        sent.append("pipeline")
        return pipeline(*args, **options)

    redis.execute_command = counted  # type: ignore[method-assign]
    redis.pipeline = counted_pipeline  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del redis.execute_command, redis.pipeline
