"""Property tests (hypothesis, stateful): random interleavings of arrivals, callers leaving,
agent logins/ready/breaks/logouts, answers, ring-no-answers, hang-ups, wrap-ups, overflows,
operations of two app instances at once, and restarts, on a real redis-server.

After every step the whole state under the test's prefix is read back and checked:
no call is assigned to two agents, no agent holds two calls, every call the test queued is
waiting in exactly its queue(s), ringing/connected with exactly one agent, or removed (none
forgotten, none resurrected), available agents are exactly in their sets and never idle while a
call they could take waits, and each queue's staff is exactly its logged-in agents. Sequential
steps also check the choice against an oracle computed from the raw hashes: the best call for
an agent (priority, then age) and the longest-idle agent for a call.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis as sync_redis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from redis.asyncio import Redis

from devtools.embedded import RedisProcess
from queues.engine import (
    Agent,
    AgentStateError,
    CallStateError,
    Offer,
    QueueEngine,
    UnknownAgentError,
    UnknownCallError,
    WaitingCall,
)
from tests.support.clock import MillisClock

T = TypeVar("T")

COUNTIES = ("330106", "330108")
CITY, PROVINCE = "330100", "330000"
PARENT = {"330106": CITY, "330108": CITY, CITY: PROVINCE}
# Weighted towards one county, so that agents compete for the same calls and calls for the
# same agents (where the choice of the longest-idle agent and the best call shows).
HOMES = (*[COUNTIES[0]] * 4, COUNTIES[1], CITY, PROVINCE)
ARRIVALS = (*[COUNTIES[0]] * 4, COUNTIES[1], CITY)
LINES = ("12315", "12365")
LANGUAGES = ("zh-CN", "en")
AGENTS = tuple(f"a{i}" for i in range(8))
#: An agent's home, lines and languages; calls mostly in Chinese, on the first line, as in life.
PROFILES = st.tuples(
    st.sampled_from(HOMES),
    st.sampled_from(({LINES[0]}, {LINES[0]}, {*LINES}, {LINES[1]})),
    st.sampled_from(({LANGUAGES[0]}, {LANGUAGES[0]}, {*LANGUAGES}, {*LANGUAGES}, {LANGUAGES[1]})),
)
CALLS = st.tuples(st.sampled_from(ARRIVALS), st.sampled_from((LINES[0], LINES[0], LINES[1])),
                  st.sampled_from((LANGUAGES[0], LANGUAGES[0], LANGUAGES[1])), st.integers(0, 2))

# Bounded so the file runs in seconds; derandomized so every run tries the same sequences. No
# shrinking: with real Redis round trips it can outlast the test timeout, and an unshrunk
# sequence of at most 40 steps is readable.
SETTINGS = settings(
    max_examples=40, stateful_step_count=40, deadline=None, derandomize=True, database=None,
    phases=(Phase.explicit, Phase.generate), suppress_health_check=[HealthCheck.too_slow],
)


async def at_once(work: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    return await asyncio.gather(*work, return_exceptions=True)


class QueueMachine(RuleBasedStateMachine):
    url = ""  # set by the test from the session's redis-server

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.prefix = f"prop-{uuid.uuid4().hex[:10]}"
        self.clock = MillisClock()
        self.check = sync_redis.Redis.from_url(self.url, decode_responses=True)
        self.clients: list[Redis] = []
        self.engines: list[QueueEngine] = []
        self.start_processes()
        self.live: set[str] = set()   # queued by the test and not ended yet
        self.ended: set[str] = set()
        self.serial = 0

    # Plumbing ------------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        # Each step a millisecond later: agents become available and calls arrive at distinct
        # times, so that the order between them is decided by time, not by id.
        self.clock.now += 1
        return self.loop.run_until_complete(coro)

    def start_processes(self) -> None:
        """Two app instances, each with its own connections, sharing one Redis and prefix."""
        self.clients = [Redis.from_url(self.url) for _ in range(2)]
        self.engines = [QueueEngine(c, self.prefix, clock_ms=self.clock, wrap_up_s=5) for c in self.clients]

    def stop_processes(self) -> None:
        for client in self.clients:
            self.run(client.aclose())

    def teardown(self) -> None:
        self.stop_processes()
        self.loop.close()
        keys = list(self.check.scan_iter(f"{self.prefix}:*", count=1000))
        if keys:
            self.check.delete(*keys)
        self.check.close()

    def k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def call_hash(self, cid: str) -> dict[str, str]:
        return self.check.hgetall(self.k("call", cid))

    def agent_hash(self, aid: str) -> dict[str, str]:
        return self.check.hgetall(self.k("agent", aid))

    def agents_in(self, state: str) -> list[str]:
        return [a for a in AGENTS if self.agent_hash(a).get("state") == state]

    def pick(self, pool: set[str], i: int) -> str | None:
        return sorted(pool)[i % len(pool)] if pool else None

    # Oracles: what the engine must choose, computed from the raw hashes, not its indexes -----

    def expected_agent(self, line: str, lang: str, queues: set[str]) -> str | None:
        free = []
        for aid in AGENTS:
            a = self.agent_hash(aid)
            if (a.get("state") == "available" and a["home"] in queues and line in a["lines"].split(",")
                    and lang in a["langs"].split(",")):
                free.append((int(a["idle_since"]), aid))
        return min(free)[1] if free else None

    def expected_call(self, a: dict[str, str]) -> str | None:
        waiting = []
        for cid in self.live:
            c = self.call_hash(cid)
            if (c["state"] == "waiting" and a["home"] in self.check.hkeys(self.k("cq", cid))
                    and c["line"] in a["lines"].split(",") and c["lang"] in a["langs"].split(",")):
                waiting.append((int(c["score"]), cid))
        return min(waiting)[1] if waiting else None

    def check_offer(self, offer: Offer) -> None:
        c, a = self.call_hash(offer.call_id), self.agent_hash(offer.agent_id)
        assert (c["state"], c["agent"], c["queue"]) == ("ringing", offer.agent_id, offer.queue)
        assert (a["state"], a["call"], a["home"]) == ("ringing", offer.call_id, offer.queue)
        assert offer.line == c["line"] in a["lines"].split(",") and c["lang"] in a["langs"].split(",")

    # Rules ---------------------------------------------------------------------------------

    @rule(calls=st.lists(CALLS, min_size=1, max_size=6), which=st.integers(0, 1))
    def calls_arrive(self, calls: list[tuple[str, str, str, int]], which: int) -> None:
        for jurisdiction, line, language, priority in calls:
            self.serial += 1
            cid = f"c{self.serial}"
            expected = self.expected_agent(line, language, {jurisdiction})
            offer = self.run(self.engines[which].enqueue(
                WaitingCall(cid, f"ch-{cid}", jurisdiction, line, priority=priority, language=language)))
            self.live.add(cid)
            assert (offer.agent_id if offer else None) == expected
            if offer:
                self.check_offer(offer)

    @rule(i=st.integers(0, 10_000), reason=st.sampled_from(("hangup", "callback")), which=st.integers(0, 1))
    def a_caller_leaves(self, i: int, reason: str, which: int) -> None:
        cid = self.pick(self.live, i)
        if cid is None:
            return
        assert self.run(self.engines[which].remove(cid, reason)) is True
        self.live.discard(cid)
        self.ended.add(cid)
        assert self.run(self.engines[1 - which].remove(cid, reason)) is False

    @rule(i=st.integers(0, 10_000), levels=st.integers(1, 2), which=st.integers(0, 1))
    def a_call_overflows(self, i: int, levels: int, which: int) -> None:
        cid = self.pick(self.live, i)
        if cid is None:
            return
        c = self.call_hash(cid)
        target = c["jur"]
        for _ in range(levels):
            target = PARENT.get(target, target)
        already = target in self.check.hkeys(self.k("cq", cid))
        expected = None if already or c["state"] != "waiting" else self.expected_agent(c["line"], c["lang"], {target})
        offer = self.run(self.engines[which].overflow(cid, target))
        assert (offer.agent_id if offer else None) == expected
        if offer:
            self.check_offer(offer)

    @initialize(profiles=st.lists(st.tuples(PROFILES, st.booleans()), min_size=len(AGENTS), max_size=len(AGENTS)))
    def the_agents_log_in(self, profiles: list[tuple[tuple[str, set[str], set[str]], bool]]) -> None:
        for aid, ((home, lines, languages), ready) in zip(AGENTS, profiles, strict=True):
            self.run(self.engines[0].login(Agent(aid, home, frozenset(lines), frozenset(languages), f"PJSIP/{aid}")))
            if ready:
                assert self.run(self.engines[0].set_available(aid)) is None  # no calls yet

    @rule(aid=st.sampled_from(AGENTS), profile=PROFILES)
    def an_agent_logs_in(self, aid: str, profile: tuple[str, set[str], set[str]]) -> None:
        home, lines, languages = profile
        self.run(self.engines[0].login(Agent(aid, home, frozenset(lines), frozenset(languages), f"PJSIP/{aid}")))

    @rule(picks=st.lists(st.integers(0, 10_000), min_size=1, max_size=3), which=st.integers(0, 1))
    def agents_are_ready(self, picks: list[int], which: int) -> None:
        for i in picks:
            aid = self.pick(set(self.agents_in("break") + self.agents_in("wrap_up")), i)
            if aid is None:
                return
            expected = self.expected_call(self.agent_hash(aid))
            offer = self.run(self.engines[which].set_available(aid))
            assert (offer.call_id if offer else None) == expected
            if offer:
                self.check_offer(offer)

    @rule(aid=st.sampled_from(AGENTS), which=st.integers(0, 1))
    def an_agent_says_ready_in_any_state(self, aid: str, which: int) -> None:
        state = self.agent_hash(aid).get("state")
        try:
            offer = self.run(self.engines[which].set_available(aid))
        except (UnknownAgentError, AgentStateError):
            assert state in (None, "offline", "ringing", "on_call")
            return
        assert state in ("available", "break", "wrap_up")
        if offer:
            self.check_offer(offer)

    @rule(aid=st.sampled_from(AGENTS), which=st.integers(0, 1))
    def an_agent_takes_a_break(self, aid: str, which: int) -> None:
        try:
            self.run(self.engines[which].set_break(aid, "rest"))
        except (UnknownAgentError, AgentStateError):
            assert self.agent_hash(aid).get("state") in (None, "offline", "ringing", "on_call")

    @rule(aid=st.sampled_from(AGENTS))
    def an_agent_logs_out(self, aid: str) -> None:
        try:
            self.run(self.engines[1].logout(aid))
        except (UnknownAgentError, AgentStateError):
            assert self.agent_hash(aid).get("state") in (None, "ringing", "on_call")

    @rule(i=st.integers(0, 10_000))
    def an_agent_answers(self, i: int) -> None:
        aid = self.pick(set(self.agents_in("ringing")), i)
        if aid is not None:
            self.run(self.engines[0].answered(self.agent_hash(aid)["call"], aid))

    @rule(i=st.integers(0, 10_000), which=st.integers(0, 1))
    def an_agent_does_not_answer(self, i: int, which: int) -> None:
        aid = self.pick(set(self.agents_in("ringing")), i)
        if aid is None:
            return
        cid = self.agent_hash(aid)["call"]
        c = self.call_hash(cid)
        expected = self.expected_agent(c["line"], c["lang"], set(self.check.hkeys(self.k("cq", cid))))
        offer = self.run(self.engines[which].ring_no_answer(cid, aid))
        assert (offer.agent_id if offer else None) == expected
        assert self.agent_hash(aid)["state"] == "break"
        if offer:
            self.check_offer(offer)

    @rule(i=st.integers(0, 10_000))
    def a_conversation_ends(self, i: int) -> None:
        aid = self.pick(set(self.agents_in("on_call")), i)
        if aid is not None:
            cid = self.agent_hash(aid)["call"]
            self.run(self.engines[1].hung_up(cid, aid))
            self.live.discard(cid)
            self.ended.add(cid)

    @rule(aid=st.sampled_from(AGENTS), i=st.integers(0, 10_000),
          report=st.sampled_from(("answered", "ring_no_answer", "hung_up")))
    def a_stale_report_is_refused(self, aid: str, i: int, report: str) -> None:
        """An agent reports on a call that is not (or no longer) theirs in that state: refused."""
        cid = self.pick(self.live | self.ended, i)
        if cid is None:
            return
        c = self.call_hash(cid)
        expected_state = "on_call" if report == "hung_up" else "ringing"
        if c and c["agent"] == aid and c["state"] == expected_state:
            return
        try:
            self.run(getattr(self.engines[0], report)(cid, aid))
        except (CallStateError, UnknownCallError):
            return
        raise AssertionError(f"{report}({cid}, {aid}) accepted for a call {c.get('state')} at {c.get('agent')!r}")

    @rule()
    def wrap_ups_end(self) -> None:
        for aid in self.run(self.engines[0].wrap_up_due()):
            offer = self.run(self.engines[0].set_available(aid))
            if offer:
                self.check_offer(offer)

    @rule(ms=st.integers(1, 20_000))
    def time_passes(self, ms: int) -> None:
        self.clock.now += ms

    @rule(flush_scripts=st.booleans())
    def the_app_restarts(self, flush_scripts: bool) -> None:
        """Both processes are replaced by new ones; optionally Redis forgot the scripts too."""
        self.stop_processes()
        if flush_scripts:
            self.check.script_flush()
        self.start_processes()

    @rule(calls=st.lists(CALLS, max_size=3), ready=st.lists(st.booleans(), min_size=len(AGENTS), max_size=len(AGENTS)),
          no_answer=st.lists(st.booleans(), min_size=len(AGENTS), max_size=len(AGENTS)),
          leaving_picks=st.lists(st.integers(0, 10_000), max_size=2))
    def both_instances_act_at_once(self, calls: list[tuple[str, str, str, int]], ready: list[bool],
                                   no_answer: list[bool], leaving_picks: list[int]) -> None:
        """Both processes make resting agents ready, report ringing agents' ring-no-answers and
        remove the same callers; calls arrive on both; callers hang up as agents answer.
        (What is drawn does not depend on the state: hypothesis must be able to replay it.)"""
        one, two = self.engines
        work: list[Coroutine[Any, Any, Any]] = []
        arrivals = []
        for jurisdiction, line, language, priority in calls:
            self.serial += 1
            cid = f"c{self.serial}"
            arrivals.append(cid)
            work.append((one, two)[self.serial % 2].enqueue(
                WaitingCall(cid, f"ch-{cid}", jurisdiction, line, priority=priority, language=language)))
        hanging_up = set()
        for aid, make_ready, rna in zip(AGENTS, ready, no_answer, strict=True):
            a = self.agent_hash(aid)
            if a.get("state") in ("break", "wrap_up") and make_ready:
                work += [one.set_available(aid), two.set_available(aid)]
            elif a.get("state") == "ringing" and rna:
                work += [one.ring_no_answer(a["call"], aid), two.ring_no_answer(a["call"], aid)]
            elif a.get("state") == "ringing":  # the caller hangs up just as the agent answers
                work += [one.answered(a["call"], aid), two.remove(a["call"], "hangup")]
                hanging_up.add(a["call"])
        leaving = {self.pick(self.live, i) for i in leaving_picks if self.live} - hanging_up - {None}
        for cid in leaving:
            work += [one.remove(cid, "hangup"), two.remove(cid, "hangup")]

        results = self.run(at_once(work))

        for r in results:
            assert not isinstance(r, BaseException) or isinstance(
                r, (AgentStateError, CallStateError, UnknownCallError)), r
        offers = [r for r in results if isinstance(r, Offer)]
        assert len({o.call_id for o in offers}) == len(offers), offers
        # An agent offered two calls within the batch is right only if the first caller left
        # meanwhile (their wrap-up is due at once and the other process made them ready).
        for aid in {o.agent_id for o in offers}:
            theirs = [o.call_id for o in offers if o.agent_id == aid]
            assert len([c for c in theirs if c not in leaving | hanging_up]) <= 1, (aid, theirs)
        assert results.count(True) >= len(leaving | hanging_up)
        self.live |= set(arrivals)
        self.live -= leaving | hanging_up
        self.ended |= leaving | hanging_up

    # The invariants ------------------------------------------------------------------------

    @invariant()
    def every_call_and_agent_is_consistent(self) -> None:
        r, k = self.check, self.k
        calls = {cid: r.hgetall(k("call", cid)) for cid in r.smembers(k("calls"))}
        # None forgotten, none resurrected.
        assert set(calls) == self.live, (set(calls) ^ self.live)
        for cid in self.ended:
            assert not r.exists(k("call", cid), k("cq", cid))
        agents = {aid: self.agent_hash(aid) for aid in AGENTS}
        agents = {aid: a for aid, a in agents.items() if a}
        zsets = {key: dict(r.zrange(key, 0, -1, withscores=True))
                 for pattern in ("q", "age", "av") for key in r.scan_iter(k(pattern, "*"), count=1000)}

        holders: dict[str, list[str]] = {}
        for aid, a in agents.items():
            if a.get("call"):
                holders.setdefault(a["call"], []).append(aid)
        assert all(len(h) == 1 for h in holders.values()), holders  # no call with two agents

        for cid, c in calls.items():
            queues = r.hgetall(k("cq", cid))
            assert c["jur"] in queues
            where = {key for key, members in zsets.items() if cid in members}
            if c["state"] == "waiting":
                assert c["agent"] == "" and cid not in holders
                expected = {k("q", j, c["line"], c["lang"]) for j in queues} | {k("age", j, c["line"]) for j in queues}
                assert where == expected, (cid, where, expected)
                for j in queues:
                    assert zsets[k("q", j, c["line"], c["lang"])][cid] == float(c["score"])
                    assert zsets[k("age", j, c["line"])][cid] == float(c["enq"])
            else:
                assert c["state"] in ("ringing", "on_call"), c
                assert where == set() and holders.get(cid) == [c["agent"]], (cid, where, holders.get(cid))
                assert agents[c["agent"]]["state"] == c["state"]

        wrapping = set(r.zrange(k("wrapup"), 0, -1))
        logged_in = r.smembers(k("agents"))
        staff: dict[str, set[str]] = {}
        for aid, a in agents.items():
            state, lines, langs = a["state"], a["lines"].split(","), a["langs"].split(",")
            if state in ("ringing", "on_call"):
                assert calls[a["call"]]["agent"] == aid and calls[a["call"]]["state"] == state
            else:
                assert a.get("call", "") == "", a
            assert (state == "wrap_up") == (aid in wrapping)
            assert (state != "offline") == (aid in logged_in)
            mine = {key for key, members in zsets.items() if aid in members and key.startswith(k("av", ""))}
            if state == "available":
                assert mine == {k("av", a["home"], line, lang) for line in lines for lang in langs}
                assert all(zsets[key][aid] == float(a["idle_since"]) for key in mine)
                # Never idle while a call it may take waits.
                for line in lines:
                    for lang in langs:
                        assert not zsets.get(k("q", a["home"], line, lang)), (aid, line, lang)
            else:
                assert mine == set(), (aid, state, mine)
            if state != "offline":
                for line in lines:
                    staff.setdefault(k("staff", a["home"], line), set()).add(aid)
        stored = {key: r.smembers(key) for key in r.scan_iter(k("staff", "*"), count=1000)}
        assert {key: members for key, members in stored.items() if members} == staff


def test_random_interleavings_never_assign_a_call_twice_nor_forget_one(redis_server: RedisProcess) -> None:
    QueueMachine.url = redis_server.url
    run_state_machine_as_test(QueueMachine, settings=SETTINGS)
