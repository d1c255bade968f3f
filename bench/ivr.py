"""IVR benchmark: one ``hotline serve`` process driven through the Asterisk stand-in.

Measures, on this machine, in one run:
- concurrent calls held in the main menu by one app process,
- call setups per second (StasisStart -> menu prompt started), in a burst,
- CPU seconds of the app process per call,
- StasisStart -> first prompt command (POST .../play) latency p50/p99 at a steady rate.

The stand-in and the scripted callers run in this process; the application runs in its
own process (as in production), so its CPU can be read from /proc.

    .venv/bin/python bench/ivr.py [--calls 2000] [--rate 100] [--write-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import measures, write_block  # noqa: E402
from devtools.embedded import RedisProcess, free_port  # noqa: E402
from devtools.pbx_sim.server import PbxSim  # noqa: E402
from ivr.prompts.catalogue import PromptCatalogue  # noqa: E402

MENU = PromptCatalogue.load("zh-CN").media("main_menu")


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


class Latency:
    """StasisStart sent -> first POST /channels/{id}/play received, per channel (stand-in clock)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.samples: list[float] = []

    def on_traffic(self, kind: str, payload: dict[str, Any]) -> None:
        now = time.perf_counter()
        if kind == "event" and payload.get("type") == "StasisStart":
            self.started[payload["channel"]["id"]] = now
        elif kind == "request":
            method, path = payload["method"], payload["path"]
            m = re.fullmatch(r"/ari/channels/([^/]+)/play", path) or re.fullmatch(r"/channels/([^/]+)/play", path)
            if method == "POST" and m and m.group(1) in self.started:
                self.samples.append((now - self.started.pop(m.group(1))) * 1000)


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.05)


async def run(calls: int, rate: float, burst: int) -> list[tuple[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ivr-"))
    redis = RedisProcess(tmp / "redis")
    redis.start()
    latency = Latency()
    sim = PbxSim(
        username="hotline", password="hotline", dialplan_path=ROOT / "dialplans" / "extensions.conf",
        sounds_dir=None, recordings_dir=tmp / "rec", default_playback_s=0.5, on_traffic=latency.on_traffic,
    )
    await sim.start(host="127.0.0.1", port=free_port())
    env = {
        **os.environ, "HOTLINE_LOG_LEVEL": "WARNING", "HOTLINE_ARI__URL": sim.url,
        "HOTLINE_REDIS__URL": redis.url, "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'b.db'}",
        "HOTLINE_IVR__NO_INPUT_TIMEOUT_S": "3600",
    }
    # BENCH_PROFILE=<file>: run the app under cProfile to see where its CPU goes.
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    # Started once, before anything is measured: a fork on the loop costs the benchmark nothing.
    app = subprocess.Popen([sys.executable, *profile, "-m", "hotline.cli", "serve"], env=env)  # noqa: ASYNC220
    rows: list[tuple[str, str]] = []
    try:
        await wait_until(lambda: sim.app_connected("hotline"), 30)
        # 1. Steady rate: latency, CPU per call, concurrent calls held.
        cpu0, t0 = cpu_seconds(app.pid), time.perf_counter()
        placed = []
        for i in range(calls):
            placed.append(await sim.place_call("12315", caller_id=f"138{i:08d}"))
            await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
        await wait_until(lambda: all(MENU in c.played for c in placed), 120)
        cpu_steady = cpu_seconds(app.pid) - cpu0
        held = sum(1 for c in placed if not c.ended and MENU in c.played)
        rss = rss_mib(app.pid)
        steady = list(latency.samples)
        # 2. Burst: how fast one process sets calls up when they all arrive at once.
        latency.samples.clear()
        tb = time.perf_counter()
        burst_calls = [await sim.place_call("12365", caller_id=f"139{i:08d}") for i in range(burst)]
        # Set up = answered and first prompt commanded (the welcome's length is not the app's).
        await wait_until(lambda: len(latency.samples) >= burst, 120)
        setups = burst / (time.perf_counter() - tb)
        burst_lat = list(latency.samples)
        await wait_until(lambda: all(MENU in c.played for c in burst_calls), 120)
        # 3. Everyone hangs up; the app must be left with nothing.
        for c in placed + burst_calls:
            await c.hangup()
        await wait_until(lambda: all(c.ended for c in placed + burst_calls), 60)

        rows = [
            ("calls held concurrently in the main menu (one app process)", f"{held + burst}"),
            ("steady arrival rate (calls/s)", f"{rate:.0f}"),
            ("StasisStart -> first play command, p50 (ms), steady", f"{statistics.median(steady):.2f}"),
            ("StasisStart -> first play command, p99 (ms), steady", f"{pct(steady, 99):.2f}"),
            (f"call setups per second, burst of {burst} (call placed -> answered, first prompt)", f"{setups:.0f}"),
            ("StasisStart -> first play command, p99 (ms), burst", f"{pct(burst_lat, 99):.2f}"),
            ("app CPU per call set up (ms), steady", f"{cpu_steady / calls * 1000:.2f}"),
            ("app resident memory with all calls held (MiB)", f"{rss:.0f}"),
        ]
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=30)
        await sim.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    rows = asyncio.run(run(args.calls, args.rate, args.burst))
    out = measures(rows)
    print(out)
    if args.write_readme:
        stamp = time.strftime("%Y-%m-%d")
        write_block("ivr", f"`bench/ivr.py --calls {args.calls} --rate {args.rate:.0f} --burst {args.burst}`, "
                     f"{os.cpu_count()} cores, {stamp}:\n\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
