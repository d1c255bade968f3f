"""Queue engine benchmark on a real redis-server (started here with RedisProcess).

With 1,000 agents logged in and 10,000 calls waiting, measures on this machine:
- enqueue -> offer: a call arrives where a matching agent is free; the offer is what
  ``enqueue`` returns, so this is the whole round trip of the assignment script, p50/p99;
- set_available -> offer: an agent becomes ready and is offered the best of the calls waiting
  in their queues, p50/p99;
- both again under a steady load of ``--rate`` assignments per second (half of each kind);
- assignments per second at saturation, by one app process and by two app processes (two OS
  processes, each with its own engine and connections) sharing the Redis and draining the same
  queues, with at least 10,000 calls still waiting at the end. Each assignment is a full agent
  cycle: ready -> offer, answered, hung up (three scripts), so the figure is the rate at which
  agents can be given calls, not the rate of one script; and that no call was offered to two
  agents across the two processes;
- change -> figures: a queue or an agent changes and the wallboard's figures (a snapshot of
  every queue, the backlog waiting) are published on ``<prefix>:figures``, p50/p99: the
  publisher acts on a change at once, not at its heartbeat.

Redis, the benchmark and its worker processes share the machine. Before each measured phase the
set-up's objects are frozen out of Python's garbage collector (as a server would after start-up)
and the steady-load run is preceded by a second of warm-up in which the client opens its
connections: otherwise a full collection or a connection being opened (tens of ms) lands in the
percentiles.

    .venv/bin/python bench/queues.py [--agents 1000] [--calls 10000] [--samples 2000] [--rate 1000]
                                     [--assignments 10000] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from bench.report import measures, write_block  # noqa: E402
from devtools.embedded import RedisProcess  # noqa: E402
from queues.engine import Agent, Offer, QueueEngine, WaitingCall  # noqa: E402
from queues.figures import FiguresPublisher  # noqa: E402

PREFIX = "bench"
LINES = ("12315", "12365", "12331", "12358", "12330")
BUSY = tuple(f"3301{i:02d}" for i in range(20))   # counties whose calls wait: the backlog
FREE = tuple(f"3302{i:02d}" for i in range(20))   # counties with agents free: enqueue -> offer
WORKERS = 64  # operations in flight per app process in the throughput runs


def settle() -> None:
    """Collect the set-up's garbage and exempt what survives from later collections, as a
    long-running server would after start-up: a full collection walking everything the set-up
    made is a pause of tens of milliseconds in the middle of a measurement otherwise."""
    gc.collect()
    gc.freeze()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def make_agents(count: int, rng: random.Random) -> tuple[list[Agent], list[Agent]]:
    """Four in five agents at busy counties, the rest at free ones; two lines each; one in ten
    also speaks English."""
    busy, free = [], []
    for i in range(count):
        home = BUSY[i % len(BUSY)] if i % 5 else FREE[(i // 5) % len(FREE)]
        languages = {"zh-CN", "en"} if i % 10 == 3 else {"zh-CN"}
        agent = Agent(f"agent{i:04d}", home, frozenset(rng.sample(LINES, 2)), frozenset(languages), f"PJSIP/{1000 + i}")
        (free if home in FREE else busy).append(agent)
    return busy, free


class Backlog:
    """Waiting calls at the busy counties, topped up between runs."""

    def __init__(self, engine: QueueEngine, rng: random.Random) -> None:
        self.engine, self.rng, self.serial = engine, rng, 0

    def next_call(self) -> WaitingCall:
        self.serial += 1
        return WaitingCall(f"call{self.serial:07d}", f"chan{self.serial:07d}", self.rng.choice(BUSY),
                           self.rng.choice(LINES), priority=self.rng.choice((0, 0, 0, 1)),
                           language="en" if self.rng.random() < 0.02 else "zh-CN")

    async def fill(self, target: int) -> None:
        """Enqueue until ``target`` calls wait; a call offered at once (its agent had gone idle
        when their queues ran dry) is answered and hung up so the agent is resting again."""
        waiting = await self.engine.redis.scard(f"{PREFIX}:calls")
        sem = asyncio.Semaphore(WORKERS)

        async def one() -> None:
            async with sem:
                offer = await self.engine.enqueue(self.next_call())
                if offer:
                    await finish(self.engine, offer)

        await asyncio.gather(*(one() for _ in range(target - waiting)))


async def finish(engine: QueueEngine, offer: Offer) -> None:
    await engine.answered(offer.call_id, offer.agent_id)
    await engine.hung_up(offer.call_id, offer.agent_id)


async def enqueue_to_offer(engine: QueueEngine, free: list[Agent], samples: int, rng: random.Random) -> list[float]:
    """A call arrives at a free county; the longest-idle matching agent is offered it."""
    for agent in free:
        await engine.set_available(agent.agent_id)
    latencies = []
    for i in range(samples):
        agent = free[i % len(free)]
        call = WaitingCall(f"fast{i:06d}", f"fastchan{i:06d}", agent.home, rng.choice(sorted(agent.lines)))
        t0 = time.perf_counter()
        offer = await engine.enqueue(call)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert offer is not None, "a free agent was expected"
        await finish(engine, offer)
        await engine.set_available(offer.agent_id)  # free counties have no waiting calls
    return latencies


async def available_to_offer(engine: QueueEngine, busy: list[Agent], samples: int, backlog: Backlog) -> list[float]:
    """A resting agent of a busy county becomes ready and takes the best waiting call."""
    latencies = []
    for i in range(samples):
        agent = busy[i % len(busy)]
        t0 = time.perf_counter()
        offer = await engine.set_available(agent.agent_id)
        latencies.append((time.perf_counter() - t0) * 1000)
        if offer:
            await finish(engine, offer)
            await engine.enqueue(backlog.next_call())  # keep the backlog where it was
    return latencies


async def steady(engine: QueueEngine, busy: list[Agent], free: list[Agent], rate: float, seconds: float,
                 backlog: Backlog, rng: random.Random) -> tuple[list[float], list[float]]:
    """Open loop: ``rate`` cycles a second, alternately an arrival at a free county and a busy
    agent becoming ready, each followed by answered and hung up; returns both latencies."""
    resting = collections.deque(a.agent_id for a in busy)
    idle = collections.deque(free)  # every one of them available in Redis
    arrivals: list[float] = []
    readies: list[float] = []
    serial = [0]

    async def ready() -> None:
        agent_id = resting.popleft()
        t0 = time.perf_counter()
        offer = await engine.set_available(agent_id)
        readies.append((time.perf_counter() - t0) * 1000)
        if offer:
            await finish(engine, offer)
            await engine.enqueue(backlog.next_call())
            resting.append(agent_id)

    async def arrival() -> None:
        target = idle.popleft()
        serial[0] += 1
        call = WaitingCall(f"steady{serial[0]:07d}", f"steadychan{serial[0]:07d}", target.home,
                           rng.choice(sorted(target.lines)))
        t0 = time.perf_counter()
        offer = await engine.enqueue(call)
        arrivals.append((time.perf_counter() - t0) * 1000)
        if offer is None:  # another arrival took the free agent of that line meanwhile
            await engine.remove(call.call_id, "bench")
            idle.append(target)
            return
        await finish(engine, offer)
        await engine.set_available(offer.agent_id)
        idle.append(next(a for a in free if a.agent_id == offer.agent_id))

    tasks = set()
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        task = asyncio.ensure_future(arrival() if i % 2 else ready())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return arrivals, readies


async def change_to_figures(redis: Redis, samples: int) -> list[float]:
    """A change is signalled and the publisher's snapshot reaches a subscriber, in ms. The
    heartbeat is an hour away, and each change waits out the interval: none is throttled."""
    interval_s = 0.05
    publisher = FiguresPublisher(redis, PREFIX, min_interval_s=interval_s)
    pubsub = redis.pubsub()
    await pubsub.subscribe(publisher.channel)
    changed = asyncio.Event()
    task = asyncio.create_task(publisher.run(changed, heartbeat_s=3600))
    latencies = []
    try:
        for _ in range(samples):
            await asyncio.sleep(interval_s * 1.5)
            t0 = time.perf_counter()
            changed.set()
            while await pubsub.get_message(ignore_subscribe_messages=True, timeout=10) is None:
                pass
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pubsub.aclose()
    return latencies


@dataclass
class Throughput:
    assignments: int
    seconds: float
    offered: list[str]
    latencies: list[float]


async def drain(engine: QueueEngine, agents: list[str], quota: int) -> Throughput:
    """WORKERS loops, each cycling its share of the agents: ready -> offer, answered, hung up;
    ``quota`` assignments in all."""
    offered: list[str] = []
    latencies: list[float] = []
    remaining = [quota]

    async def worker(mine: list[str]) -> None:
        while mine and remaining[0] > 0:
            agent_id = mine.pop(0)
            t0 = time.perf_counter()
            offer = await engine.set_available(agent_id)
            latencies.append((time.perf_counter() - t0) * 1000)
            if offer is None:
                continue  # nothing left in this agent's queues: they stay available, out of the loop
            remaining[0] -= 1
            offered.append(offer.call_id)
            await finish(engine, offer)
            mine.append(agent_id)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(agents[w::WORKERS]) for w in range(WORKERS)))
    return Throughput(len(offered), time.perf_counter() - t0, offered, latencies)


def process_main(url: str, agents: list[str], quota: int, start: mp.synchronize.Barrier, out: mp.Queue) -> None:
    """One app process of the two-process run."""
    install_uvloop()

    async def main() -> Throughput:
        redis = Redis.from_url(url)
        engine = QueueEngine(redis, PREFIX, wrap_up_s=0)
        await redis.ping()  # connect before the clock starts
        settle()
        start.wait()
        result = await drain(engine, agents, quota)
        await redis.aclose()
        return result

    result = asyncio.run(main())
    # Plain values: the parent cannot unpickle a class of this (spawned) main module.
    out.put((result.assignments, result.seconds, result.offered, result.latencies))


def two_processes(url: str, busy: list[Agent], quota: int) -> tuple[Throughput, Throughput, float]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(3), ctx.Queue()
    ids = [a.agent_id for a in busy]
    procs = [ctx.Process(target=process_main, args=(url, ids[i::2], quota // 2, start, out)) for i in range(2)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    results = [Throughput(*out.get(timeout=300)) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
    return results[0], results[1], wall


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def prepare(url: str, agents: int, calls: int, rng: random.Random) -> tuple[list[Agent], list[Agent]]:
    redis = Redis.from_url(url)
    engine = QueueEngine(redis, PREFIX, wrap_up_s=0)
    busy, free = make_agents(agents, rng)
    for agent in busy + free:
        await engine.login(agent)
    await Backlog(engine, rng).fill(calls)
    await redis.aclose()
    return busy, free


async def run(agents: int, calls: int, samples: int, rate: float, quota: int) -> list[tuple[str, str]]:
    rng = random.Random(12315)
    tmp = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    server = RedisProcess(tmp / "redis")
    server.start()
    try:
        busy, free = await prepare(server.url, agents, calls, rng)
        redis = Redis.from_url(server.url)
        engine = QueueEngine(redis, PREFIX, wrap_up_s=0)
        backlog = Backlog(engine, rng)
        backlog.serial = calls
        waiting_at_start = await redis.scard(f"{PREFIX}:calls")
        settle()

        fast = await enqueue_to_offer(engine, free, samples, rng)
        ready = await available_to_offer(engine, busy, samples, backlog)
        await backlog.fill(calls)
        settle()
        # Fewer samples: each waits out the publisher's interval.
        figures = await change_to_figures(redis, max(20, samples // 20))
        # A first second to warm up: the client opens the connections the load needs (each a
        # few ms, felt by the operations waiting for it), then the measured run.
        await steady(engine, busy, free, rate, 1.0, backlog, rng)
        fast_loaded, ready_loaded = await steady(engine, busy, free, rate, 3.0, backlog, rng)
        # Saturation runs start with enough calls that at least ``calls`` still wait at the end.
        await backlog.fill(calls + quota)
        settle()
        one = await drain(engine, [a.agent_id for a in busy], quota)
        await backlog.fill(calls + quota)
        await redis.aclose()

        first, second, wall = two_processes(server.url, busy, quota)
        both = first.offered + second.offered
        twice = len(both) - len(set(both))
        return [
            ("agents logged in", f"{agents}"),
            ("calls waiting", f"{waiting_at_start}"),
            ("enqueue -> offer (matching agent free), p50 (ms)", f"{statistics.median(fast):.2f}"),
            ("enqueue -> offer (matching agent free), p99 (ms)", f"{pct(fast, 99):.2f}"),
            ("set_available -> offer (calls waiting), p50 (ms)", f"{statistics.median(ready):.2f}"),
            ("set_available -> offer (calls waiting), p99 (ms)", f"{pct(ready, 99):.2f}"),
            (f"enqueue -> offer at {rate:.0f} assignments/s steady, p99 (ms)", f"{pct(fast_loaded, 99):.2f}"),
            (f"set_available -> offer at {rate:.0f} assignments/s steady, p99 (ms)", f"{pct(ready_loaded, 99):.2f}"),
            (f"assignments/s at saturation, one app process ({WORKERS} loops of offer, answered, hung up)",
             f"{one.assignments / one.seconds:.0f}"),
            ("assignments/s at saturation, two app processes sharing one Redis", f"{len(both) / wall:.0f}"),
            ("calls offered twice across the two processes", f"{twice}"),
            ("change -> figures published (every queue), p50 (ms)", f"{statistics.median(figures):.2f}"),
            ("change -> figures published (every queue), p99 (ms)", f"{pct(figures, 99):.2f}"),
        ]
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=2000, help="latency samples per measure")
    parser.add_argument("--rate", type=float, default=1000, help="assignments/s of the steady-load run")
    parser.add_argument("--assignments", type=int, default=10_000, help="assignments per saturation run")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    install_uvloop()
    rows = asyncio.run(run(args.agents, args.calls, args.samples, args.rate, args.assignments))
    out = measures(rows)
    print(out)
    if args.write_readme:
        stamp = time.strftime("%Y-%m-%d")
        write_block(
            "queues",
            "Queue engine (issue 4): `bench/queues.py` drives the engine on a real redis-server "
            "(append-only, fsync every second) on the same machine. Targets: p99 at most 5 ms, at least "
            "5,000 assignments/s. An assignment in the saturation rows is a whole agent cycle (the offer, "
            "answered, hung up: three scripts); the two processes draw from the same queues.\n\n"
            f"`bench/queues.py --agents {args.agents} --calls {args.calls} --samples {args.samples} "
            f"--rate {args.rate:.0f} --assignments {args.assignments}`, {os.cpu_count()} cores, {stamp}:\n\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
