"""IVR benchmark: one ``hotline serve`` process driven through the Asterisk stand-in.

Measures, on this machine, in one run:

1. **Whole calls** (``--whole``): a caller dials 0571-12315, hears the welcome and the menu,
   keys 1, is queued and offered to a free agent, whose phone (a stand-in desk phone) rings and
   answers; the caller and the agent are bridged, talk, the caller hangs up and the call record
   is written. Per call: the app's CPU, Redis's CPU, ARI requests and events, Redis commands and
   round trips, SQL statements and transactions, log lines. Speech, recording and delivery off,
   as in the side-by-side comparison with the dialplan (issue 15). The same counts, per kind of
   request, event, command and statement, with ``--detail``.
2. **Calls in the menu** (``--calls``): concurrent calls held in the main menu by one app
   process; StasisStart -> first prompt command (POST .../play) latency p50/p99 at a steady
   rate and in a burst; app CPU per call set up (answered and first prompt only).

The stand-in and the scripted callers run in this process; the application runs in its own
(as in production), under ``bench/app_probe.py``, which counts what only its process sees (SQL,
log records, its CPU). Redis is counted with INFO (CPU, commands, reads: the writes that reached
it, each a round trip unless sent without a reply, ``LeanRedis.tell``), the ARI traffic at the
stand-in. ``BENCH_PROFILE=<file>`` writes a cProfile of the app over the
whole-call phase only (``python -m pstats <file>``).

    .venv/bin/python bench/ivr.py [--whole 500] [--whole-rate 20] [--agents 80] [--talk 1.0]
                                  [--calls 2000] [--rate 100] [--burst 500] [--detail] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from bench.report import measures, table, write_block  # noqa: E402
from core.settings import RedisSettings  # noqa: E402
from devtools.embedded import RedisProcess, free_port  # noqa: E402
from devtools.pbx_sim.server import PbxSim  # noqa: E402
from ivr.prompts.catalogue import PromptCatalogue  # noqa: E402
from queues.engine import Agent, QueueEngine  # noqa: E402

MENU = PromptCatalogue.load("zh-CN").media("main_menu")
#: Hangzhou's area code before the general line: the call's jurisdiction is known (330100),
#: where the agents are, so no caller is asked for their city.
WHOLE_CALL_NUMBER = "057112315"
AGENTS_HOME = "330100"
#: Seconds a desk phone rings before it answers; the agents' wrap-up after a call.
RING_S = 0.2
WRAP_UP_S = 1.0
#: Ids in ARI paths, so that requests are counted by what they do, not whom they concern.
ARI_ID = re.compile(r"^/ari/(channels|bridges|playbacks|recordings/live|recordings/stored|endpoints/\w+)/[^/]+")
ANY_ID = r"/ari/\1/{id}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Traffic:
    """What crosses ARI, seen at the stand-in: requests by kind (``POST /ari/channels/{id}/play``),
    events by type, and StasisStart sent -> first POST .../play received, per channel."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.started: dict[str, float] = {}
        self.samples: list[float] = []

    def on_traffic(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "event":
            self.events[payload["type"]] += 1
            if payload["type"] == "StasisStart" and payload.get("args", [None])[0] != "agent":
                self.started[payload["channel"]["id"]] = time.perf_counter()
        elif kind == "request":
            method, path = payload["method"], payload["path"]
            self.requests[f"{method} {ARI_ID.sub(ANY_ID, path)}"] += 1
            if method == "POST" and path.endswith("/play"):
                channel = path.split("/")[-2]
                started = self.started.pop(channel, None)
                if started is not None:
                    self.samples.append((time.perf_counter() - started) * 1000)

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.requests), Counter(self.events)


class AppProbe:
    """The app process's own counters (``bench/app_probe.py``), read on demand."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.proc, self.out, self.asked = proc, out, 0

    async def read(self) -> dict[str, Any]:
        self.asked += 1
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data: dict[str, Any] = json.loads(self.out.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if data.get("snapshot") == self.asked:
                return data
            await asyncio.sleep(0.01)
        raise TimeoutError("the app did not write its counters")

    def profile(self) -> None:
        """Start cProfile in the app, or stop it and write the profile (with BENCH_PROFILE set)."""
        os.kill(self.proc.pid, signal.SIGUSR2)


async def redis_figures(client: Redis) -> dict[str, Any]:
    """Redis's CPU, commands by name and reads (writes received), in one INFO: the INFO itself is
    one command and one read, left out of the differences (see ``Figures.since``)."""
    info = await client.info("everything")
    return {
        "cpu_s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "reads": int(info["total_reads_processed"]),
        "commands": {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()
                     if k.startswith("cmdstat_") and k != "cmdstat_info"},
        # Redis's own time in each command (a script's inner commands counted in it and apart).
        "usec": {k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in info.items()
                 if k.startswith("cmdstat_") and k != "cmdstat_info"},
    }


class Figures:
    """Everything counted at one moment: the app's probe, Redis, the stand-in's traffic, our CPU."""

    def __init__(self, app: dict[str, Any], redis: dict[str, Any], traffic: tuple[Counter[str], Counter[str]],
                 at: float) -> None:
        self.app, self.redis, self.traffic, self.at = app, redis, traffic, at
        self.bench_cpu_s = time.process_time()

    @classmethod
    async def take(cls, probe: AppProbe, client: Redis, traffic: Traffic) -> Figures:
        return cls(await probe.read(), await redis_figures(client), traffic.snapshot(), time.perf_counter())

    def since(self, before: Figures) -> dict[str, Any]:
        commands = Counter(self.redis["commands"])
        commands.subtract(before.redis["commands"])
        usec = Counter(self.redis["usec"])
        usec.subtract(before.redis["usec"])
        sql = Counter(self.app["sql_by_verb"])
        sql.subtract(before.app["sql_by_verb"])
        requests, events = self.traffic[0] - before.traffic[0], self.traffic[1] - before.traffic[1]
        return {
            "seconds": self.at - before.at,
            "app_cpu_s": self.app["cpu_s"] - before.app["cpu_s"],
            "redis_cpu_s": self.redis["cpu_s"] - before.redis["cpu_s"],
            "bench_cpu_s": self.bench_cpu_s - before.bench_cpu_s,
            "redis_reads": self.redis["reads"] - before.redis["reads"] - 1,  # our INFO's
            "redis_commands": +commands,
            "redis_usec": +usec,
            "sql": self.app["sql"] - before.app["sql"],
            "sql_by_verb": +sql,
            "commits": self.app["commits"] - before.app["commits"],
            "log_lines": self.app["log_records"] - before.app["log_records"],
            "gc_s": self.app["gc_s"] - before.app["gc_s"],
            "gc_by_generation": [a - b for a, b in zip(self.app["gc_by_generation"],
                                                       before.app["gc_by_generation"], strict=True)],
            "requests": requests,
            "events": events,
        }


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.05)


def answered_records(db: Path) -> int:
    """Call records of answered calls that have ended, as the database has them now."""
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM call_records WHERE outcome = 'answered' "
                                    "AND ended_at IS NOT NULL").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not there yet
            return 0


async def whole_call(sim: PbxSim, n: int, talk_s: float, timeout: float = 60.0) -> bool:
    """One caller from dialling to hanging up after talking with an agent; True when an agent answered."""
    call = await sim.place_call(WHOLE_CALL_NUMBER, caller_id=f"137{n:08d}")
    try:
        await call.wait_for_playback(MENU, timeout)
        await call.wait_for_playback_finished(MENU, timeout)
        call.send_dtmf("1")  # a complaint
        if await call.wait_answered(timeout) is None:
            return False
        await asyncio.sleep(talk_s)
        return True
    finally:
        await call.hangup()
        await call.wait_ended(timeout)


async def whole_calls(sim: PbxSim, count: int, rate: float, talk_s: float, first: int) -> int:
    """``count`` callers at ``rate`` a second, each living a whole call; how many were answered."""
    t0 = time.perf_counter()
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(whole_call(sim, first + i, talk_s)))
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    return sum(await asyncio.gather(*tasks))


async def staff(redis: Redis, sim: PbxSim, agents: int) -> None:
    """Agents of Hangzhou on the general line, logged in and ready; their phones answer after RING_S."""
    engine = QueueEngine(redis, f"{RedisSettings().prefix}:queues")
    for n in range(agents):
        agent = Agent(f"8{n:03d}", AGENTS_HOME, frozenset({"general"}), frozenset({"zh-CN"}), f"PJSIP/8{n:03d}")
        sim.endpoint(agent.endpoint, answer_after_s=RING_S)
        await engine.login(agent)
        await engine.set_available(agent.agent_id)


def per_call(d: dict[str, Any], calls: int) -> list[tuple[str, str]]:
    app_ms, redis_ms = d["app_cpu_s"] / calls * 1000, d["redis_cpu_s"] / calls * 1000
    return [
        ("app CPU per whole call (ms)", f"{app_ms:.2f}"),
        ("Redis CPU per whole call (ms)", f"{redis_ms:.2f}"),
        ("app + Redis CPU per whole call (ms; target <= 8)", f"{app_ms + redis_ms:.2f}"),
        ("ARI requests per call", f"{sum(d['requests'].values()) / calls:.1f}"),
        ("ARI events per call", f"{sum(d['events'].values()) / calls:.1f}"),
        ("Redis commands per call", f"{sum(d['redis_commands'].values()) / calls:.1f}"),
        ("Redis reads (the app's writes, answered or told) per call", f"{d['redis_reads'] / calls:.1f}"),
        ("SQL statements per call", f"{d['sql'] / calls:.2f}"),
        ("SQL transactions per call", f"{d['commits'] / calls:.2f}"),
        ("log lines per call (INFO)", f"{d['log_lines'] / calls:.1f}"),
        ("app's garbage collections per call (generation 0 / 1 / 2), and their time (ms)",
         " / ".join(f"{n / calls:.2f}" for n in d["gc_by_generation"]) + f"; {d['gc_s'] / calls * 1000:.2f}"),
        ("stand-in and callers' CPU per call (ms; this process, not the app's)",
         f"{d['bench_cpu_s'] / calls * 1000:.2f}"),
    ]


def detail(d: dict[str, Any], calls: int) -> str:
    """Per call, by kind: ARI requests and events, Redis commands, SQL statements."""
    parts = []
    for title, counts in (("ARI request", d["requests"]), ("ARI event", d["events"]),
                          ("SQL statement", d["sql_by_verb"])):
        rows = [(k, f"{v / calls:.2f}") for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
        parts.append(table([title, "per call"], rows))
    usec = d["redis_usec"]
    timed = [(k, f"{v / calls:.2f}", f"{usec.get(k, 0) / calls:.1f}")
             for k, v in sorted(d["redis_commands"].items(), key=lambda kv: -kv[1])]
    parts.insert(2, table(["Redis command", "per call", "Redis µs per call (a script's inner commands: "
                           "also in evalsha's)"], timed))
    return "\n\n".join(parts)


async def run(args: argparse.Namespace) -> tuple[list[tuple[str, str]], str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    redis_proc = RedisProcess(tmp / "redis")
    redis_proc.start()
    traffic = Traffic()
    sim = PbxSim(
        username="hotline", password="hotline", dialplan_path=ROOT / "dialplans" / "extensions.conf",
        sounds_dir=None, recordings_dir=tmp / "rec", default_playback_s=0.5, on_traffic=traffic.on_traffic,
    )
    await sim.start(host="127.0.0.1", port=free_port())
    db = tmp / "b.db"
    env = {
        **os.environ, "HOTLINE_LOG_LEVEL": args.log_level, "HOTLINE_ARI__URL": sim.url,
        "HOTLINE_REDIS__URL": redis_proc.url, "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{db}",
        "HOTLINE_IVR__NO_INPUT_TIMEOUT_S": "3600", "HOTLINE_IVR__CHECK_MEDIA": "false",
        "HOTLINE_HTTP__PORT": str(free_port()), "HOTLINE_QUEUES__WRAP_UP_S": str(WRAP_UP_S),
        # Off in both paths of the side-by-side comparison (issue 15).
        "HOTLINE_SPEECH__ENABLED": "false", "HOTLINE_RECORDINGS__ENABLED": "false",
        "HOTLINE_PLATFORM__ENABLED": "false", "BENCH_PROBE_OUT": str(tmp / "probe.json"),
    }
    log = (tmp / "app.log").open("wb")
    # Started once, before anything is measured: a fork on the loop costs the benchmark nothing.
    app = subprocess.Popen([sys.executable, str(ROOT / "bench" / "app_probe.py"), "serve"],  # noqa: ASYNC220
                           env=env, stderr=log)
    probe = AppProbe(app, tmp / "probe.json")
    client = Redis.from_url(redis_proc.url)
    rows: list[tuple[str, str]] = []
    more = ""
    try:
        await wait_until(lambda: sim.app_connected("hotline"), 30)
        if args.whole:
            await staff(client, sim, args.agents)
            # A few calls first: connections opened, caches filled, as in a server that has run.
            warm = max(5, args.whole // 20)
            await whole_calls(sim, warm, args.whole_rate, args.talk, 0)
            await wait_until(lambda: answered_records(db) >= warm, 30)
            # Idle: once the warm calls' wrap-ups have ended (they would count as idle work).
            await asyncio.sleep(WRAP_UP_S + 1.0)
            idle0 = await Figures.take(probe, client, traffic)
            await asyncio.sleep(4.0)
            idle = (await Figures.take(probe, client, traffic)).since(idle0)
            before = await Figures.take(probe, client, traffic)
            probe.profile()
            answered = await whole_calls(sim, args.whole, args.whole_rate, args.talk, warm)
            await sim.wait_idle(timeout=30)
            await wait_until(lambda: answered_records(db) >= warm + answered, 30)
            probe.profile()
            d = (await Figures.take(probe, client, traffic)).since(before)
            latency = traffic.samples[-args.whole:]
            rows += [
                ("whole calls (dial, welcome, menu, key 1, queue, agent rings and answers, bridge, talk, hang-up)",
                 f"{args.whole} at {args.whole_rate:.0f}/s, talking {args.talk:.1f} s"),
                ("whole calls answered by an agent / call records written as answered",
                 f"{answered} / {answered_records(db) - warm}"),
                *per_call(d, args.whole),
                ("app CPU while idle between calls (ms per second; included above)",
                 f"{idle['app_cpu_s'] / idle['seconds'] * 1000:.2f}"),
                ("StasisStart -> first play command, p50 / p99 (ms), whole calls",
                 f"{statistics.median(latency):.2f} / {pct(latency, 99):.2f}"),
            ]
            if args.detail:
                more = detail(d, args.whole)
        if args.calls:
            rows += await menu_phase(sim, app, traffic, args.calls, args.rate, args.burst)
    finally:
        await client.aclose()
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=30)
        log.close()
        await sim.stop()
        redis_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows, more


async def menu_phase(sim: PbxSim, app: subprocess.Popen[bytes], traffic: Traffic, calls: int, rate: float,
                     burst: int) -> list[tuple[str, str]]:
    """Calls held in the main menu: first-prompt latency, CPU per call set up, calls held."""
    # 1. Steady rate: latency, CPU per call, concurrent calls held.
    traffic.samples.clear()
    cpu0, t0 = cpu_seconds(app.pid), time.perf_counter()
    placed = []
    for i in range(calls):
        placed.append(await sim.place_call("12315", caller_id=f"138{i:08d}"))
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    await wait_until(lambda: all(MENU in c.played for c in placed), 120)
    cpu_steady = cpu_seconds(app.pid) - cpu0
    held = sum(1 for c in placed if not c.ended and MENU in c.played)
    rss = rss_mib(app.pid)
    steady = list(traffic.samples)
    # 2. Burst: how fast one process sets calls up when they all arrive at once.
    traffic.samples.clear()
    tb = time.perf_counter()
    burst_calls = [await sim.place_call("12365", caller_id=f"139{i:08d}") for i in range(burst)]
    # Set up = answered and first prompt commanded (the welcome's length is not the app's).
    await wait_until(lambda: len(traffic.samples) >= burst, 120)
    setups = burst / (time.perf_counter() - tb)
    burst_lat = list(traffic.samples)
    await wait_until(lambda: all(MENU in c.played for c in burst_calls), 120)
    # 3. Everyone hangs up; the app must be left with nothing.
    for c in placed + burst_calls:
        await c.hangup()
    await wait_until(lambda: all(c.ended for c in placed + burst_calls), 60)
    return [
        ("calls held concurrently in the main menu (one app process)", f"{held + burst}"),
        ("steady arrival rate (calls/s)", f"{rate:.0f}"),
        ("StasisStart -> first play command, p50 (ms), steady", f"{statistics.median(steady):.2f}"),
        ("StasisStart -> first play command, p99 (ms), steady", f"{pct(steady, 99):.2f}"),
        (f"call setups per second, burst of {burst} (call placed -> answered, first prompt)", f"{setups:.0f}"),
        ("StasisStart -> first play command, p99 (ms), burst", f"{pct(burst_lat, 99):.2f}"),
        ("app CPU per call set up (ms), steady (answer and first prompt only)", f"{cpu_steady / calls * 1000:.2f}"),
        ("app resident memory with all calls held (MiB)", f"{rss:.0f}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whole", type=int, default=500, help="whole calls to measure (0: none)")
    parser.add_argument("--whole-rate", type=float, default=20.0, help="whole calls placed per second")
    parser.add_argument("--agents", type=int, default=80, help="agents ready for the whole calls")
    parser.add_argument("--talk", type=float, default=1.0, help="seconds caller and agent talk")
    parser.add_argument("--calls", type=int, default=2000, help="calls held in the menu (0: none)")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--log-level", default="INFO", help="the app's (production's default: INFO)")
    parser.add_argument("--detail", action="store_true", help="per call counts by kind of request, event, command")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    rows, more = asyncio.run(run(args))
    out = measures(rows)
    print(out)
    if more:
        print("\n" + more)
    if args.write_readme:
        stamp = time.strftime("%Y-%m-%d")
        write_block("ivr", f"`bench/ivr.py --whole {args.whole} --whole-rate {args.whole_rate:.0f} --agents "
                    f"{args.agents} --talk {args.talk:g} --calls {args.calls} --rate {args.rate:.0f} --burst "
                    f"{args.burst}`, {os.cpu_count()} cores, {stamp}:\n\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
