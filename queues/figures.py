"""Live figures for the supervisor wallboard, per queue (jurisdiction, line) and optionally per level.

What is counted, and where:

- ``waiting`` and ``longest_wait_s`` are read from the queues themselves (``P:age:<jur>:<line>``),
  so they are exact at the moment of the snapshot. A call that overflowed counts in every
  queue it sits in, with its wait since it first entered the system.
- ``answered`` and ``answered_within`` (15/20/30 s from entering the queue to the agent
  answering) count in the queue whose agent answered; ``abandoned`` (the caller left while
  waiting or ringing) and ``callbacks`` (left to be called back) count in every queue the call
  waited in. The engine's Lua scripts count them in the same run as the change, in one-minute
  slots (``P:st:<jur>:<line>``; an answer once, in the band of its wait, so the three
  "within" figures are running sums); the window is the last 60 minutes: the current minute
  so far and the 59 before it.
- ``agents``: logged-in agents whose home is the queue's jurisdiction and who serve its line,
  by state, read at the snapshot from the queue's staff (``P:staff:<jur>:<line>``, changed
  only at login and logout) and each agent's state. Counters kept by the scripts would cost
  several writes per call on the assignment path for a figure read twice a second.

:class:`FiguresPublisher` publishes a snapshot as JSON on the pub/sub channel ``<prefix>:figures``
at most once per ``min_interval_s`` (0.2 s) across every process sharing the prefix; with
``only_when_watched``, only while some process has a wallboard open (:func:`mark_watched`, renewed
by that process). A snapshot reads every logged-in agent's state: with 250 agents at one call a
second, each call's five or so changes made five snapshots that nobody read (issue 15). A
wallboard that opens reads a snapshot of its own (``agent_desktop.wallboard``), so nothing is
missed while nobody watched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from core.beat import sleep_to_the_beat
from queues.engine import AgentState, lua_source, wall_clock_ms

WINDOW_MINUTES = 60  # must match SLOTS in queues/lua/_lib.lua
THRESHOLDS_S = (15, 20, 30)
#: Queues read per pipeline round trip, so that a large deployment does not block Redis.
CHUNK = 200

log = logging.getLogger(__name__)

#: ARGV: the prefix, then agent ids -> each agent's state (nil for one logged out meanwhile).
_AGENT_STATES = """
local states = {}
for i = 2, #ARGV do
  states[i - 1] = redis.call('HGET', ARGV[1] .. ':agent:' .. ARGV[i], 'state')
end
return states
"""

# Per slot: answers by band of wait (a15: <= 15 s, a20: 15-20 s, a30: 20-30 s, a99: longer).
_COUNTED = ("a15", "a20", "a30", "a99", "abandoned", "callbacks")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _window_counts(slots: dict[str, str], now_ms: int) -> dict[str, int]:
    """Sum the slots that hold one of the last WINDOW_MINUTES minutes."""
    minute = now_ms // 60_000
    totals = dict.fromkeys(_COUNTED, 0)
    for slot in range(WINDOW_MINUTES):
        held = slots.get(f"{slot}:m")
        if held is None or not minute - WINDOW_MINUTES < int(held) <= minute:
            continue
        for name in _COUNTED:
            totals[name] += int(slots.get(f"{slot}:{name}", 0))
    return totals


def _queue_figures(jurisdiction: str, line: str, waiting: int, oldest: list[Any], slots: dict[Any, Any],
                   agent_states: list[str], now_ms: int) -> dict[str, Any]:
    counts = _window_counts({_s(k): _s(v) for k, v in slots.items()}, now_ms)
    longest = max(0.0, (now_ms - float(oldest[0][1])) / 1000) if oldest else 0.0
    by_state = {state.value: 0 for state in AgentState if state is not AgentState.OFFLINE}
    for state in agent_states:
        if state in by_state:  # an agent who logged out between the two reads is not counted
            by_state[state] += 1
    within, total = {}, 0
    for t in THRESHOLDS_S:
        total += counts[f"a{t}"]
        within[str(t)] = total
    return {
        "jurisdiction": jurisdiction, "line": line, "waiting": waiting, "longest_wait_s": round(longest, 1),
        "answered": total + counts["a99"], "answered_within": within,
        "abandoned": counts["abandoned"], "callbacks": counts["callbacks"], "agents": by_state,
    }


def _aggregate(queues: list[dict[str, Any]], level_of: Callable[[str], str]) -> list[dict[str, Any]]:
    """Sum queue figures per (level, line); the longest wait is the longest of any queue."""
    levels: dict[tuple[str, str], dict[str, Any]] = {}
    for q in queues:
        level = level_of(q["jurisdiction"])
        acc = levels.setdefault((level, q["line"]), {
            "level": level, "line": q["line"], "waiting": 0, "longest_wait_s": 0.0, "answered": 0,
            "answered_within": {str(t): 0 for t in THRESHOLDS_S}, "abandoned": 0, "callbacks": 0,
            "agents": dict.fromkeys(q["agents"], 0),
        })
        for name in ("waiting", "answered", "abandoned", "callbacks"):
            acc[name] += q[name]
        acc["longest_wait_s"] = max(acc["longest_wait_s"], q["longest_wait_s"])
        for t, n in q["answered_within"].items():
            acc["answered_within"][t] += n
        for state, n in q["agents"].items():
            acc["agents"][state] = acc["agents"].get(state, 0) + n
    return [levels[k] for k in sorted(levels)]


async def snapshot(redis: Redis, prefix: str, now_ms: int, *,
                   level_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The figures of every queue seen so far (a call or an agent), and per level if
    ``level_of`` maps a jurisdiction code to its level's name (e.g. from the jurisdiction tree)."""
    names = sorted(_s(q) for q in await redis.smembers(f"{prefix}:queues"))
    queues: list[dict[str, Any]] = []
    for start in range(0, len(names), CHUNK):
        chunk = [name.split(":", 1) for name in names[start:start + CHUNK]]
        # Not a transaction: a figure a millisecond off is fine, stalling Redis is not.
        async with redis.pipeline(transaction=False) as pipe:
            for jur, line in chunk:
                age = f"{prefix}:age:{jur}:{line}"
                pipe.zcard(age)
                pipe.zrange(age, 0, 0, withscores=True)
                pipe.hgetall(f"{prefix}:st:{jur}:{line}")
                pipe.smembers(f"{prefix}:staff:{jur}:{line}")
            replies = await pipe.execute()
        agents = sorted({_s(a) for i in range(len(chunk)) for a in replies[4 * i + 3]})
        # One script for every agent's state: a command per agent was most of what a snapshot
        # cost Redis and us (a centre's agents, several snapshots a second while calls come).
        read = await redis.register_script(_AGENT_STATES)(args=[prefix, *agents]) if agents else []
        states = {a: _s(st) for a, st in zip(agents, read, strict=True) if st is not None}
        for i, (jur, line) in enumerate(chunk):
            waiting, oldest, slots, staff = replies[4 * i:4 * i + 4]
            agent_states = [states.get(_s(a), "") for a in staff]
            queues.append(_queue_figures(jur, line, waiting, oldest, slots, agent_states, now_ms))
    figures: dict[str, Any] = {"at_ms": now_ms, "window_s": WINDOW_MINUTES * 60, "queues": queues}
    if level_of is not None:
        figures["levels"] = _aggregate(queues, level_of)
    return figures


#: How long a wallboard's mark keeps the figures coming; its process renews it every third of this.
WATCHED_TTL_MS = 15_000


async def mark_watched(redis: Redis, prefix: str) -> None:
    """Somebody watches the figures of ``prefix`` (a wallboard is open): publish them for the
    next :data:`WATCHED_TTL_MS`."""
    await redis.set(f"{prefix}:figures:watched", "1", px=WATCHED_TTL_MS)


#: Seconds between snapshots while no caller waits anywhere and nothing changes: each is five
#: Redis round trips, once a second on an idle server before (issue 15). Below the wallboard's
#: FIGURES_STALE_MS (5 s), after which it would read a snapshot of its own.
QUIET_HEARTBEAT_S = 4.0


class FiguresPublisher:
    """Publishes :func:`snapshot` on ``<prefix>:figures``, throttled across processes."""

    def __init__(self, redis: Redis, prefix: str, *, clock_ms: Callable[[], int] = wall_clock_ms,
                 min_interval_s: float = 0.2, level_of: Callable[[str], str] | None = None,
                 only_when_watched: bool = False) -> None:
        self.redis, self.prefix, self.clock_ms, self.level_of = redis, prefix, clock_ms, level_of
        self.channel = f"{prefix}:figures"
        self.min_interval_ms = round(min_interval_s * 1000)
        self.only_when_watched = only_when_watched
        #: The last publish found nobody watching (not a throttle: nothing to try again soon).
        self.unwatched = False
        self._gate = redis.register_script(lua_source("figures_gate"))

    async def publish(self) -> dict[str, Any] | None:
        """Publish a snapshot now, unless one was published (by any process) less than the
        interval ago, or nobody watches and ``only_when_watched``: then None, and nothing is
        computed."""
        now = self.clock_ms()
        gate = await self._gate(args=[self.prefix, now, self.min_interval_ms, int(self.only_when_watched)])
        self.unwatched = gate == -1
        if gate != 1:
            return None
        figures = await snapshot(self.redis, self.prefix, now, level_of=self.level_of)
        await self.redis.publish(self.channel, json.dumps(figures, ensure_ascii=False, separators=(",", ":")))
        return figures

    async def run(self, changed: asyncio.Event | None = None, *, heartbeat_s: float = 1.0,
                  quiet_heartbeat_s: float = QUIET_HEARTBEAT_S) -> None:
        """Publish until cancelled: as soon as ``changed`` is set (a queue or an agent changed),
        at most once per interval, and every ``heartbeat_s`` anyway while a caller waits (waits
        grow by themselves), every ``quiet_heartbeat_s`` while nobody does (only the service
        level's window slides then). One task per process; the gate keeps it to one snapshot
        per interval across processes, and a change another process's snapshot missed is
        published at the next interval."""
        changed = changed or asyncio.Event()
        heartbeat = heartbeat_s
        while True:
            if self.unwatched:
                # Nobody watches: changes are not looked at (each look is a round trip, several
                # per call); the heartbeat looks whether a wallboard opened meanwhile. One that
                # opens reads a snapshot of its own first, and trusts none older than 5 s. On the
                # process's common beat (core.beat): an idle process wakes once for all its looks.
                await sleep_to_the_beat(quiet_heartbeat_s)
            else:
                try:
                    async with asyncio.timeout(heartbeat):
                        await changed.wait()
                except TimeoutError:
                    pass
            changed.clear()
            try:
                figures = await self.publish()
                if self.unwatched:
                    heartbeat = quiet_heartbeat_s
                elif figures is None:
                    changed.set()  # throttled: this change goes out with the next snapshot
                else:
                    waiting = any(q.get("waiting") for q in figures.get("queues", ()))
                    heartbeat = heartbeat_s if waiting else quiet_heartbeat_s
            except Exception:
                log.warning("publishing the queue figures failed; trying again", exc_info=True)
            if not self.unwatched:  # unwatched, the next look is a beat away anyway: no wake-up for nothing
                await asyncio.sleep(self.min_interval_ms / 1000)
