"""The queue engine: calls waiting per (jurisdiction, business line), agents, and the atomic
assignment of one to the other, all in Redis.

Several application processes may share one Redis; every change of state is one Lua script
run (``queues/lua/``), so correctness never depends on anything held in a process. An engine
object holds no state (only scripts on their way to Redis): dropping it and building another is
a restart. Scripts called in the same turn of the event loop travel in one pipeline (see
``_Batcher``); each still runs atomically on its own.

A script whose reply is lost with its connection may or may not have run, like any Redis
command; a client that retries on connection errors could run it twice (a second
``set_available`` would then be refused while the first one's offer went unseen). Give the
engine a client without such retries (``hotline.app.connect_redis`` builds one: in redis-py 8
a pool made by ``from_url`` does not retry) and, after a connection error, read the state back
(:meth:`QueueEngine.agent`, :meth:`QueueEngine.call`).

Key layout (``P`` = prefix; jurisdictions, lines and languages may not contain ``:`` or ``,``):

=============================  =====  ========================================================
``P:q:<jur>:<line>:<lang>``    zset   waiting calls by ordering score (below); one per language
                                      so that an agent finds a call they can take at the head
``P:age:<jur>:<line>``         zset   waiting calls by the ms they first queued (their place in
                                      time): counts, longest wait, overdue calls for overflow
``P:av:<jur>:<line>:<lang>``   zset   available agents whose home is ``jur``, by idle-since (ms)
``P:call:<id>``                hash   a live call: channel, jur, line, prio, lang, enq, score,
                                      state (waiting/ringing/on_call), agent, queue (the
                                      jurisdiction whose agent took it), offered_at, answered_at
``P:cq:<id>``                  hash   the jurisdictions whose queue the call is in -> ms it
                                      entered each (its own, then each overflow)
``P:agent:<id>``               hash   home, lines, langs, endpoint, state, reason, since, call,
                                      idle_since, resume_idle, wrap_until
``P:calls`` / ``P:agents``     set    live calls / logged-in agents (for resync after restart)
``P:wrapup``                   zset   agents in wrap-up by the ms it ends
``P:langs`` / ``P:queues``     set    call languages seen / "<jur>:<line>" queues seen
``P:staff:<jur>:<line>``       set    logged-in agents whose home is ``jur`` serving ``line``
``P:st:<jur>:<line>``          hash   per one-minute slot: answers by band of wait (<= 15, 20,
                                      30 s, longer), abandoned, callbacks (see queues.figures)
``P:hist:<jur>:<line>``        list   ms of the queue's recent answers, newest first (estimated wait)
=============================  =====  ========================================================

Ordering score: ``(PRIORITY_MAX - priority) * 2**43 + enqueued_at_ms``. A sorted set ranks low
scores first, so a higher priority ranks first, then an earlier arrival. 2**43 ms reach the year
2248, leaving 10 of a double's 53 exact integer bits for 1,024 priority levels (-512..511):
every score is an exact integer, so equal inputs give equal scores in every process. Calls with
equal scores (same priority, same millisecond) rank by call id. A call keeps its score for life:
an overflow puts it in the higher queue with it (its place in time), a ring-no-answer puts it
back with it (at the head, ahead of everyone who came later).

Costs: ``enqueue`` and ``set_available`` touch a fixed number of sorted-set heads (one per
line x language an agent serves), O(log n) in waiting calls and agents; no script scans a
queue or the agents, except ``waiting()`` which lists a whole queue by design. On the path of
a call (enqueue, offer, answered, hung up) no script reads more hash fields or makes more
writes than it needs: that is what a busy Redis spends its time on (``bench/queues.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT

from core.tasks import BackgroundTasks

PRIORITY_MIN, PRIORITY_MAX = -512, 511
TIME_BITS = 43
#: Wrap-up when nothing more specific is configured.
DEFAULT_WRAP_UP_S = 10.0
#: Answers older than this do not count towards the estimated wait.
HISTORY_WINDOW_MS = 30 * 60 * 1000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def ordering_score(priority: int, enqueued_at_ms: int) -> int:
    """The sorted-set score of a waiting call (see the module docstring)."""
    return (PRIORITY_MAX - priority) << TIME_BITS | enqueued_at_ms


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"


class QueueError(RuntimeError):
    """A request the engine refused; the message says why."""


class UnknownCallError(QueueError, LookupError):
    pass


class UnknownAgentError(QueueError, LookupError):
    pass


class CallStateError(QueueError):
    """The call is not in the state the request assumes (e.g. answered but no longer ringing)."""


class AgentStateError(QueueError):
    """The agent is not in a state that allows the request (e.g. available while on a call)."""


_ERRORS: dict[str, type[QueueError]] = {
    "UNKNOWN_CALL": UnknownCallError,
    "UNKNOWN_AGENT": UnknownAgentError,
    "CALL_STATE": CallStateError,
    "AGENT_STATE": AgentStateError,
}


def _code(what: str, value: object) -> str:
    """A jurisdiction, line or language: it is part of key names and comma-joined lists."""
    if not isinstance(value, str) or not value or any(ch in value for ch in ":, \t\r\n"):
        raise ValueError(f"{what} must be a non-empty string without ':', ',' or whitespace, got {value!r}")
    return value


def _ident(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _codes(what: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ValueError(f"{what} must be a set of strings, got the string {values!r}")
    out = frozenset(_code(what, v) for v in values)
    if not out:
        raise ValueError(f"{what} must not be empty")
    return out


@dataclass(frozen=True)
class WaitingCall:
    call_id: str
    channel_id: str
    jurisdiction: str
    line: str
    priority: int = 0
    language: str = "zh-CN"
    #: Filled from the engine's clock when None.
    enqueued_at_ms: int | None = None

    def __post_init__(self) -> None:
        _ident("call_id", self.call_id)
        _ident("channel_id", self.channel_id)
        _code("jurisdiction", self.jurisdiction)
        _code("line", self.line)
        _code("language", self.language)
        if type(self.priority) is not int or not PRIORITY_MIN <= self.priority <= PRIORITY_MAX:
            raise ValueError(f"priority must be an integer in {PRIORITY_MIN}..{PRIORITY_MAX}, got {self.priority!r}")
        at = self.enqueued_at_ms
        if at is not None and (type(at) is not int or not 0 <= at < 1 << TIME_BITS):
            raise ValueError(f"enqueued_at_ms must be ms since the epoch (0..2**{TIME_BITS}), got {at!r}")


@dataclass(frozen=True)
class Agent:
    agent_id: str
    home: str
    lines: frozenset[str]
    languages: frozenset[str]
    endpoint: str

    def __post_init__(self) -> None:
        _ident("agent_id", self.agent_id)
        _code("home", self.home)
        _ident("endpoint", self.endpoint)
        # frozen: normalise through object.__setattr__ (lists and sets are accepted).
        object.__setattr__(self, "lines", _codes("lines", self.lines))
        object.__setattr__(self, "languages", _codes("languages", self.languages))


#: A write a script makes with its own change, and only if it makes it: ``("SET", key, value)``
#: (a call's state saved) or ``("PUBLISH", channel, message)`` (news of the change). One write
#: to Redis less a transition than the same sent after the script's reply (issue 15).
Write = tuple[str, str, str]
_WRITES = frozenset({"SET", "PUBLISH"})


def _also(writes: Iterable[Write]) -> list[str]:
    """The script arguments that carry ``writes`` (see ``also`` in ``queues/lua/_lib.lua``)."""
    out: list[str] = []
    for write in writes:
        if len(write) != 3 or write[0] not in _WRITES or not all(isinstance(part, str) for part in write):
            raise ValueError(f"a script's write is (SET or PUBLISH, key, value) as strings, got {write!r}")
        out += write
    return out


@dataclass(frozen=True)
class Offer:
    call_id: str
    channel_id: str
    agent_id: str
    endpoint: str
    #: The jurisdiction whose queue matched (the agent's home).
    queue: str
    line: str


@cache
def lua_source(name: str) -> str:
    """A script of ``queues/lua/`` with the shared helpers (``_lib.lua``) in front of it."""
    lua = resources.files("queues") / "lua"
    return (lua / "_lib.lua").read_text("utf-8") + "\n" + (lua / f"{name}.lua").read_text("utf-8")


_SCRIPTS = ("enqueue", "overflow", "remove", "login", "logout", "set_available", "set_break", "answered",
            "ring_no_answer", "connect_failed", "hung_up", "position", "waiting")
#: Scripts that only read: they never change a wallboard figure.
_READ_ONLY = frozenset({"position", "waiting"})


@dataclass(frozen=True)
class _Script:
    name: str
    args: list[EncodableT]


#: A plain read that rides in a batch: it puts its one command on the pipeline. Cheaper for
#: Redis than a script doing the same: on an idle server (1 call/s) an EVALSHA costs it 65-135
#: µs (entering Lua, the shared helpers), an HMGET 14-29 (commandstats, 2026-12-07).
_Read = Callable[[Pipeline], Any]
_Job = _Script | _Read


class _Batcher:
    """Sends the scripts (and reads) that coroutines call in the same turn of the event loop
    together, in one pipeline: one connection, one write and one round trip for all of them
    instead of one each (redis-py's per-command overhead, not Redis, is what limits a busy
    process). Each script still runs atomically on its own, and a caller's own calls stay in
    order (it awaits each). Under light load a batch holds one script and nothing waits for
    anything else."""

    def __init__(self, redis: Redis, sources: Mapping[str, str]) -> None:
        self._redis = redis
        self._sources = dict(sources)
        self._shas = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in sources.items()}
        self._batch: list[tuple[_Job, asyncio.Future[Any]]] = []
        self._sends = BackgroundTasks("queue engine batches")

    def run(self, name: str, args: list[EncodableT]) -> asyncio.Future[Any]:
        return self.submit(_Script(name, args))

    def submit(self, job: _Job) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._batch:
            # The task's first step comes after everything else ready in this turn of the loop:
            # whatever those coroutines submit meanwhile goes in the same batch.
            self._sends.spawn(self._send(), "queue-engine-batch")
        self._batch.append((job, future))
        return future

    async def _send(self) -> None:
        batch, self._batch = self._batch, []
        try:
            replies = await self._pipeline(batch)
            lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if lost:  # Redis restarted or flushed its scripts; those did not run: load, run again
                for name in {job.name for job, _ in (batch[i] for i in lost) if isinstance(job, _Script)}:
                    await self._redis.script_load(self._sources[name])
                for i, reply in zip(lost, await self._pipeline([batch[i] for i in lost]), strict=True):
                    replies[i] = reply
        except asyncio.CancelledError:  # the loop is closing: so are the callers
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the connection failed: every caller hears of it
            replies = [exc] * len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _pipeline(self, batch: list[tuple[_Job, asyncio.Future[Any]]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job, _ in batch:
                if isinstance(job, _Script):
                    pipe.evalsha(self._shas[job.name], 0, *job.args)
                else:
                    job(pipe)
            return await pipe.execute(raise_on_error=False)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    text = _s(value) if value is not None else ""
    return int(text) if text else None


def _offer(result: Any) -> Offer | None:
    return Offer(*(_s(v) for v in result)) if result else None


class QueueEngine:
    """One per application process; any number of them may share a Redis and a prefix."""

    def __init__(self, redis: Redis, prefix: str, *, clock_ms: Callable[[], int] = wall_clock_ms,
                 wrap_up_s: Mapping[str, float] | float = DEFAULT_WRAP_UP_S) -> None:
        self.redis, self.prefix, self.clock_ms, self.wrap_up_s = redis, _ident("prefix", prefix), clock_ms, wrap_up_s
        # Scripts are loaded on first use (and again after a Redis restart flushed them).
        self._batcher = _Batcher(redis, {name: lua_source(name) for name in _SCRIPTS})
        #: Set after every script that may change a figure: the wallboard publishes on change
        #: instead of on a timer, so what happens is on screen within a fraction of a second.
        self.changed = asyncio.Event()
        #: Set when this process makes something due later (a wrap-up, a callback's retry), with
        #: the earliest such time in :attr:`scheduled_ms`: the loop that ends them (see
        #: ``QueueService``) wakes up for it instead of looking at Redis every fraction of a second.
        self.scheduled = asyncio.Event()
        self.scheduled_ms: int | None = None
        #: Agent -> when the wrap-up this process started for them ends (see :meth:`wrap_ups_due`).
        self._wrap_ups_ending: dict[str, int] = {}

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, name: str, *args: EncodableT, now: int | None = None) -> Any:
        now = self.clock_ms() if now is None else now
        try:
            return await self._batcher.run(name, [self.prefix, now, *args])
        except ResponseError as exc:
            code, _, message = str(exc).partition(" ")
            if code in _ERRORS:
                raise _ERRORS[code](message) from None
            raise
        finally:
            if name not in _READ_ONLY:  # even a refusal may have moved something (an offer put back)
                self.changed.set()

    def schedule(self, due_ms: int, *, wrap_up_of: str | None = None) -> None:
        """Something this process put in Redis is due at ``due_ms``: wake the due loop for it.
        ``wrap_up_of``: it is that agent's wrap-up (:meth:`wrap_ups_due` names them)."""
        if wrap_up_of is not None:
            self._wrap_ups_ending[wrap_up_of] = due_ms
        if self.scheduled_ms is None or due_ms < self.scheduled_ms:
            self.scheduled_ms = due_ms
        self.scheduled.set()

    def wrap_ups_due(self, now_ms: int) -> list[str]:
        """The agents whose wrap-up, started by this process, ends by ``now_ms`` (named once:
        the due loop ends them with :meth:`end_wrap_up`, in the round trip of its look)."""
        due = [agent_id for agent_id, ends in self._wrap_ups_ending.items() if ends <= now_ms]
        for agent_id in due:
            del self._wrap_ups_ending[agent_id]
        return due

    def parties_soon(self, call_id: str) -> asyncio.Future[tuple[str | None, str | None]]:
        """The call's channel and agent as they are before the next script this coroutine
        submits (in this turn of the loop) changes them: read in that script's pipeline, ahead of
        it, so it costs no round trip of its own. Await it after the script."""
        key = self.key("call", _ident("call_id", call_id))
        read = self._batcher.submit(lambda pipe: pipe.hmget(key, "channel", "agent"))
        pair: asyncio.Future[tuple[str | None, str | None]] = asyncio.get_running_loop().create_future()

        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                pair.cancel()
            elif (error := future.exception()) is not None:
                pair.set_exception(error)
            else:
                channel, agent = future.result()
                pair.set_result((_s(channel) if channel else None, _s(agent) if agent else None))
            if pair.done() and not pair.cancelled():
                pair.exception()  # nobody may wait (the script failed first): not "never retrieved"

        read.add_done_callback(done)
        return pair

    # Calls ---------------------------------------------------------------------------------

    async def enqueue(self, call: WaitingCall) -> Offer | None:
        """Queue the call in its jurisdiction's queue; offered at once if a matching agent is free."""
        offer, _ = await self.enqueue_resuming(call, None)
        return offer

    async def enqueue_resuming(self, call: WaitingCall, place_key: str | None) -> tuple[Offer | None, bool]:
        """:meth:`enqueue`, first taking the place kept at ``place_key`` (when the caller first
        queued, set when they gave up waiting) if there is one; and whether there was. In the
        same script: a caller's first queueing costs one round trip, not two."""
        now = self.clock_ms()
        at = now if call.enqueued_at_ms is None else call.enqueued_at_ms
        kept, *offer = await self._run(
            "enqueue", call.call_id, call.channel_id, call.jurisdiction, call.line, call.priority,
            call.language, at, ordering_score(call.priority, at), place_key or "", ordering_score(call.priority, 0),
            now=now)
        return _offer(offer), bool(kept)

    async def overflow(self, call_id: str, to_jurisdiction: str) -> Offer | None:
        """Also offer the call in ``to_jurisdiction``'s queue, with its original score. Idempotent."""
        return _offer(await self._run("overflow", _ident("call_id", call_id), _code("jurisdiction", to_jurisdiction)))

    async def remove(self, call_id: str, reason: str) -> bool:
        """The caller is gone (hung up, took a callback, abandoned): out of every queue.

        Counted as abandoned in each queue it waited in unless ``reason == "callback"``. If an
        agent's phone was ringing for it, the agent goes to a wrap-up that is due at once (see
        :meth:`wrap_up_due`) keeping their place in the idle order; if connected, the agent goes
        to wrap-up as after :meth:`hung_up`. False when the call is unknown (already gone)."""
        return bool(await self._with_wrap_up("remove", _ident("call_id", call_id), _ident("reason", reason)))

    async def position(self, call_id: str) -> tuple[int, float | None]:
        """1-based position in the best queue the call waits in, and an estimated wait (s).

        The estimate is the position times the queue's mean interval between its answers of
        the last 30 minutes (at most 20), or the time since its last answer if longer. None
        while the queue has fewer than two recent answers; ``(0, None)`` once the call is
        offered or connected."""
        result = await self._run("position", _ident("call_id", call_id), HISTORY_WINDOW_MS)
        if result is None:
            raise UnknownCallError(f"no call {call_id}")
        pos, estimate_ms = int(result[0]), int(result[1])
        return pos, (estimate_ms / 1000 if estimate_ms >= 0 else None)

    async def waiting(self, jurisdiction: str, line: str) -> list[str]:
        """Call ids waiting in the (jurisdiction, line) queue, best first."""
        return [_s(c) for c in await self._run("waiting", _code("jurisdiction", jurisdiction), _code("line", line))]

    async def overdue(self, jurisdiction: str, line: str, waited_s: float) -> list[str]:
        """Calls in the queue that entered the system at least ``waited_s`` ago: for overflow timers."""
        cutoff = self.clock_ms() - round(waited_s * 1000)
        ids = await self.redis.zrangebyscore(self.key("age", _code("jurisdiction", jurisdiction), _code("line", line)),
                                             "-inf", cutoff)
        return [_s(c) for c in ids]

    async def call(self, call_id: str) -> dict[str, Any] | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.key("call", call_id))
            pipe.hgetall(self.key("cq", call_id))
            raw, queues = await pipe.execute()
        if not raw:
            return None
        h = {_s(k): _s(v) for k, v in raw.items()}
        entered = {_s(k): int(_s(v)) for k, v in queues.items()}
        return {
            "call_id": h["id"], "channel_id": h["channel"], "jurisdiction": h["jur"], "line": h["line"],
            "priority": int(h["prio"]), "language": h["lang"], "enqueued_at_ms": int(h["enq"]),
            "score": int(h["score"]), "state": h["state"], "agent_id": h.get("agent") or None,
            "queue": h.get("queue") or None, "offered_at_ms": _int(h.get("offered_at")),
            "answered_at_ms": _int(h.get("answered_at")),
            # jurisdiction -> ms it entered that queue, in order of entry
            "queues": dict(sorted(entered.items(), key=lambda kv: kv[1])),
        }

    async def live_calls(self) -> list[str]:
        """Every call waiting, ringing or connected: what a restarted process checks against ARI."""
        return sorted(_s(c) for c in await self.redis.smembers(self.key("calls")))

    # Agents --------------------------------------------------------------------------------

    async def login(self, agent: Agent) -> None:
        """Register the agent, on break ("login") until :meth:`set_available`. Logging in again
        replaces the profile: an available agent goes back on break (their new queues may hold
        calls, and login offers none); a ringing, connected or wrapping-up agent keeps their
        state and call."""
        await self._run("login", agent.agent_id, agent.home, ",".join(sorted(agent.lines)),
                        ",".join(sorted(agent.languages)), agent.endpoint)

    async def logout(self, agent_id: str) -> None:
        """Refused while ringing or on a call: report ring_no_answer or hung_up first."""
        await self._run("logout", _ident("agent_id", agent_id))

    async def set_available(self, agent_id: str) -> Offer | None:
        """The agent is ready: offered the best call waiting in their home queues, else waits."""
        return _offer(await self._run("set_available", _ident("agent_id", agent_id)))

    async def end_wrap_up(self, agent_id: str) -> tuple[bool, Offer | None]:
        """The agent available, as :meth:`set_available`, if their wrap-up is due; (False, None)
        and no change when it is not (ended already, or the agent on break or logged out since)."""
        result = await self._run("set_available", _ident("agent_id", agent_id), "due")
        return (False, None) if result == 0 else (True, _offer(result))

    async def set_break(self, agent_id: str, reason: str) -> None:
        await self._run("set_break", _ident("agent_id", agent_id), _ident("reason", reason))

    async def answered(self, call_id: str, agent_id: str, *, then: Iterable[Write] = ()) -> None:
        """The agent picked up: ringing -> on_call (and counted for the service level).
        ``then``: writes made in the same script, only if it makes the change (see :data:`Write`)."""
        await self._run("answered", _ident("call_id", call_id), _ident("agent_id", agent_id), *_also(then))

    async def ring_no_answer(self, call_id: str, agent_id: str) -> Offer | None:
        """Agent on break ("no_answer"); the call back at its place, offered again if someone is free."""
        return _offer(await self._run("ring_no_answer", _ident("call_id", call_id), _ident("agent_id", agent_id)))

    async def connect_failed(self, call_id: str, agent_id: str, pause_s: float) -> Offer | None:
        """The agent answered but the call could not be put through (an ARI step failed): the
        agent pauses ``pause_s`` in a wrap-up (reason "connect_failed", keeping their place in
        the idle order) that :meth:`wrap_up_due` ends; the call back at its place, offered
        again if someone is free."""
        pause_ms = max(0, round(pause_s * 1000))
        offer = _offer(await self._run("connect_failed", _ident("call_id", call_id), _ident("agent_id", agent_id),
                                       pause_ms))
        self.schedule(self.clock_ms() + pause_ms, wrap_up_of=agent_id)
        return offer

    async def hung_up(self, call_id: str, agent_id: str, *, then: Iterable[Write] = ()) -> None:
        """The conversation is over: the call is gone, the agent in wrap-up for the queue's wrap-up
        time. ``then``: writes made in the same script, only if it makes the change (see :data:`Write`)."""
        agent_id = _ident("agent_id", agent_id)
        await self._with_wrap_up("hung_up", _ident("call_id", call_id), agent_id, wrap_up_of=agent_id,
                                 also=_also(then))

    async def wrap_up_due(self, now_ms: int | None = None) -> list[str]:
        """Agents whose wrap-up has ended by ``now_ms``: call set_available for each (any
        process may, so a restarted one finishes wrap-ups another one started)."""
        now = self.clock_ms() if now_ms is None else now_ms
        return [_s(a) for a in await self.redis.zrangebyscore(self.key("wrapup"), "-inf", now)]

    async def wrap_ups_ahead(self, limit: int, *, first_of: str) -> tuple[list[tuple[str, int]], int | None]:
        """The first ``limit`` agents in wrap-up with the ms each one's ends, earliest first,
        and the lowest score (a due time in ms) in the sorted set ``first_of``, None when it is
        empty, in one round trip: the due loop sees in one read the wrap-ups that are due (to
        end with :meth:`set_available`) and, after them, when the next one is. Two reads that
        ride in the pipeline of the scripts the loop sends in that moment (the ends it knows are
        due)."""
        wrap_ups_key, last = self.key("wrapup"), int(limit) - 1
        wrap_ups, first = await asyncio.gather(
            self._batcher.submit(lambda pipe: pipe.zrange(wrap_ups_key, 0, last, withscores=True)),
            self._batcher.submit(lambda pipe: pipe.zrange(first_of, 0, 0, withscores=True)))
        return [(_s(agent), int(ms)) for agent, ms in wrap_ups], int(first[0][1]) if first else None

    async def agent(self, agent_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hgetall(self.key("agent", agent_id))
        if not raw:
            return None
        h = {_s(k): _s(v) for k, v in raw.items()}
        return {
            "agent_id": h["id"], "home": h["home"], "lines": sorted(h["lines"].split(",")),
            "languages": sorted(h["langs"].split(",")), "endpoint": h["endpoint"],
            "state": AgentState(h["state"]), "reason": h.get("reason") or None, "since_ms": _int(h.get("since")),
            "call_id": h.get("call") or None, "idle_since_ms": _int(h.get("idle_since")),
            "wrap_up_until_ms": _int(h.get("wrap_until")),
        }

    async def logged_in(self) -> list[str]:
        return sorted(_s(a) for a in await self.redis.smembers(self.key("agents")))

    async def staffed(self, jurisdiction: str, line: str) -> int:
        """Logged-in agents of the queue, in any state: zero means overflow at once."""
        return int(await self.redis.scard(self.key("staff", _code("jurisdiction", jurisdiction), _code("line", line))))

    # Wrap-up -------------------------------------------------------------------------------

    def wrap_up_ms(self, queue: str | None, line: str | None) -> int:
        """Wrap-up for a call answered in ``queue`` on ``line``: from a mapping, the first of
        ``"<queue>:<line>"``, ``"<line>"``, ``"<queue>"``, ``"*"`` present, else 10 s."""
        spec = self.wrap_up_s
        if not isinstance(spec, Mapping):
            return round(float(spec) * 1000)
        for name in (f"{queue}:{line}", line, queue, "*"):
            if name is not None and name in spec:
                return round(float(spec[name]) * 1000)
        return round(DEFAULT_WRAP_UP_S * 1000)

    async def _with_wrap_up(self, script: str, *args: EncodableT, wrap_up_of: str | None = None,
                            also: Sequence[str] = ()) -> Any:
        # The wrap-up depends on the queue that answered, known only in Redis. Try a guess: a
        # flat wrap-up fits any queue ('*'); with a mapping the script names the queue and the
        # second run is exact (an answered call's queue never changes).
        guess, ms = ("*", self.wrap_up_ms(None, None)) if not isinstance(self.wrap_up_s, Mapping) else ("?", 0)
        for _ in range(3):
            now = self.clock_ms()
            result = await self._run(script, *args, ms, guess, *also, now=now)
            if not (isinstance(result, list) and _s(result[0]) == "retry"):
                if result:
                    self.schedule(now + ms, wrap_up_of=wrap_up_of)  # an agent's wrap-up (if the call had one) ends then
                return result
            queue, line = _s(result[1]), _s(result[2])
            guess, ms = f"{queue}:{line}", self.wrap_up_ms(queue, line)
        raise QueueError(f"{script}: the call's queue kept changing")  # cannot happen: see above
