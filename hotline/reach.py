"""The services the commands need, and what the operator reads when one cannot be reached.

Each command that cannot reach Redis or the database ends with one line saying which (its URL,
password masked) and what to check, and an exit code of its own (:class:`ExitCode`), so that a
supervisor (systemd, a container runtime) and a person at the terminal both know what failed.
Asterisk is not among them: ``hotline serve`` keeps trying it (``ari.events``), since calls
wait in its fallback dialplan and nothing is lost by waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import TYPE_CHECKING

from core.privacy import mask_url

if TYPE_CHECKING:  # only for annotations: the commands that need no database do not import it
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class ExitCode(IntEnum):
    OK = 0
    #: The command ran and refused or found something (its message says what).
    REFUSED = 1
    #: Bad usage: an unknown flag, a bad setting, a settings file that is missing or not TOML.
    USAGE = 2
    REDIS_UNREACHABLE = 3
    DATABASE_UNREACHABLE = 4
    #: Ctrl-C.
    INTERRUPTED = 130


#: What ``hotline --help`` says about them (and the README repeats).
EXIT_CODES_HELP = """exit codes:
  0    done
  1    refused or found problems (the message says what)
  2    bad usage or a bad setting (the message names the flag, variable or file key)
  3    Redis cannot be reached (check [redis] url / HOTLINE_REDIS__URL and that redis-server runs)
  4    the database cannot be reached (check [database] url / HOTLINE_DATABASE__URL)
  130  interrupted (Ctrl-C)
  hotline serve does not stop when Asterisk is away: it logs a WARNING and tries again."""


class Unreachable(Exception):
    """A service the command needs did not answer; the message is the one line to show."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def redis_unreachable(url: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"cannot reach Redis at {mask_url(url)} ({_reason(exc)}): check that redis-server runs "
                       f"there and [redis] url (HOTLINE_REDIS__URL)", ExitCode.REDIS_UNREACHABLE)


def database_unreachable(url: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"cannot reach the database at {mask_url(url)} ({_reason(exc)}): check that it runs, "
                       f"accepts this user and password, and [database] url (HOTLINE_DATABASE__URL)",
                       ExitCode.DATABASE_UNREACHABLE)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # SQLAlchemy appends "(Background on this error at: https://sqlalche.me/...)" and the SQL.
    text = re.sub(r"^\([\w.]+\)\s*", "", text)
    return mask_url(text).rstrip(".")[:200]


def is_redis_unreachable(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import InvalidResponse
    from redis.exceptions import TimeoutError as RedisTimeoutError

    # InvalidResponse: something answered at that address, but not Redis (a web server, a proxy).
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | InvalidResponse)


def is_database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` may say that the database did not answer (SQLAlchemy's operational
    errors, the driver's refused logins, a socket's own errors). Only "may": an operational
    error is also a locked file or a missing table, so :func:`database_problem` asks again."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | socket.gaierror | TimeoutError):
        return True
    try:
        from asyncpg.exceptions import (  # type: ignore[import-untyped]
            InvalidAuthorizationSpecificationError,
            InvalidCatalogNameError,
        )
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, InvalidAuthorizationSpecificationError | InvalidCatalogNameError)


async def probe_database(engine: AsyncEngine) -> None:
    """One ``SELECT 1`` on a connection of ``engine``: the database answers, or this raises why."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def database_problem(url: str, *, timeout_s: float = 10.0) -> BaseException | None:
    """Why a fresh connection to the database fails (``SELECT 1``), or None when it answers."""
    from core.db import make_engine

    try:
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 - whatever stops it is the answer
        return exc
    try:
        async with asyncio.timeout(timeout_s):
            await probe_database(engine)
    except Exception as exc:  # noqa: BLE001 - whatever stops it is the answer
        return exc
    finally:
        await engine.dispose()
    return None


async def retrying(what: str, attempt: Callable[[], Awaitable[object]], *, unreachable: Callable[[BaseException],
                   bool], worded: Callable[[BaseException], Unreachable], wait_s: float,
                   attempt_timeout_s: float | None = None) -> None:
    """Run ``attempt`` until it succeeds or ``wait_s`` has passed, a WARNING per failure.

    A service started together with us (systemd, compose) is often a few seconds late; longer
    than ``wait_s`` is an outage, better reported by our exit than hidden in a process that
    looks up and serves nothing. ``attempt_timeout_s`` bounds each attempt, for a client
    without a connect timeout of its own: a host that drops packets would hold it for the
    system's TCP timeout (minutes). The last error, when ``unreachable`` says it is one (or an
    attempt got no answer at all: a :class:`TimeoutError`), is raised as ``worded`` says it;
    any other is raised as is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = 0.5
    while True:
        try:
            async with asyncio.timeout(attempt_timeout_s):
                await attempt()
            return
        except Exception as exc:
            if not (isinstance(exc, TimeoutError) or unreachable(exc)):
                raise
            if loop.time() + delay > deadline:
                raise worded(exc) from None
            log.warning("%s not reachable (%s); trying again in %.1f s", what, _reason(exc), delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
