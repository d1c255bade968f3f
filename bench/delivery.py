"""Delivery to the national platform, end to end: cases committed to the outbox, claimed by
workers, signed, sent to the platform stand-in (in its own process, enforcing the whole
contract), settled. On SQLite and on PostgreSQL (started here).

Three figures per database:
- **delivery**: cases already committed to the outbox, from starting the workers until the
  platform has stored the last (claim, sign, send, settle);
- **live**: cases per second from the first commit until the platform stored the last, with
  the producer committing cases (100 per transaction) in the same process while the workers
  deliver;
- **backlog drain**: cases pile up during an announced platform outage (503 with
  Retry-After); the time from the outage's end until the platform has all of them.

    .venv/bin/python bench/delivery.py [--cases 5000] [--backlog 5000] [--no-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import measures, table, write_block
from core.db import make_engine
from core.migrate import create_schema
from core.settings import PlatformSettings
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from devtools.embedded import PostgresProcess, free_port
from tests.support.documents import ORG, SECRET, case_document

BATCH = 100
#: Real seconds the platform is down while the backlog builds up.
OUTAGE_S = 5.0


def _serve_platform(port: int) -> None:
    """The stand-in, alone in a process (the other core): its CPU is not ours to measure."""
    from devtools.platform_sim.server import PlatformSim

    async def serve() -> None:
        sim = PlatformSim(orgs={ORG: SECRET})
        await sim.start(port=port)
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


class Platform:
    """The stand-in's control API (``/sim/...``)."""

    def __init__(self, port: int) -> None:
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}/api"

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.root}/sim/stats") as resp:
            stats: dict[str, Any] = await resp.json()  # a JSON object of counters
            return stats

    async def outage(self, http: aiohttp.ClientSession, seconds: float) -> None:
        """Down for ``seconds`` (the stand-in's default time scale is real time)."""
        async with http.put(f"{self.root}/sim/faults", json={"outage_s": seconds}) as resp:
            resp.raise_for_status()

    async def wait_stored(self, http: aiohttp.ClientSession, count: int, timeout: float = 600) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if int((await self.stats(http))["stored"]) >= count:
                return time.perf_counter()
            await asyncio.sleep(0.02)
        raise SystemExit(f"the platform did not get {count} cases within {timeout} s")

    async def wait_up(self, http: aiohttp.ClientSession) -> None:
        for _ in range(200):
            try:
                await self.stats(http)
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        raise SystemExit("the platform stand-in did not start")


async def produce(outbox: Outbox, start: int, count: int) -> None:
    for first in range(start, start + count, BATCH):
        async with AsyncSession(outbox.engine) as session, session.begin():
            for n in range(first, min(first + BATCH, start + count)):
                doc = case_document(n)
                await outbox.enqueue(session, kind="case", key=doc["case_id"], body=doc, ticket_id=doc["case_id"])


async def run_backend(name: str, engine: AsyncEngine, platform: Platform, cases: int, backlog: int, *,
                      workers: int) -> list[object]:
    await create_schema(engine)
    outbox = Outbox(engine)
    settings = PlatformSettings(url=platform.url, org_code=ORG, secret=SECRET, workers=workers,
                                concurrency=128 // workers, claim_batch=128 // workers * 2, poll_s=0.2)
    async with aiohttp.ClientSession() as http:
        base = int((await platform.stats(http))["stored"])
        delivery = PlatformDelivery(outbox, settings)
        # 1. Delivery alone: cases already committed, workers started, until the platform has all.
        await produce(outbox, base, cases)
        started = time.perf_counter()
        await delivery.start()
        try:
            delivered = cases / (await platform.wait_stored(http, base + cases) - started)
            # 2. Live: the centre commits cases (100 a transaction) while the workers deliver them.
            base += cases
            started = time.perf_counter()
            await produce(outbox, base, cases)
            live = cases / (await platform.wait_stored(http, base + cases) - started)
            base += cases
            # 3. An announced outage (503 with Retry-After: the time left) while cases pile up.
            await platform.outage(http, OUTAGE_S)
            ended = time.perf_counter() + OUTAGE_S
            await produce(outbox, base, backlog)
            drain_s = await platform.wait_stored(http, base + backlog) - ended
        finally:
            await delivery.stop()
    print(f"{name}: delivery {delivered:,.0f} cases/s, live {live:,.0f} cases/s; "
          f"backlog of {backlog:,} drained in {drain_s:.2f} s", flush=True)
    return [name, workers, f"{delivered:,.0f}", f"{live:,.0f}", f"{backlog:,} in {drain_s:.2f} s"]


async def main_async(args: argparse.Namespace) -> list[list[object]]:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve_platform, args=(port,), daemon=True)
    server.start()
    platform = Platform(port)
    rows = []
    try:
        async with aiohttp.ClientSession() as http:
            await platform.wait_up(http)
        if "sqlite" in args.databases:
            with tempfile.TemporaryDirectory() as tmp:
                engine = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
                try:
                    rows.append(await run_backend("SQLite", engine, platform, args.cases, args.backlog, workers=1))
                finally:
                    await engine.dispose()
        if "postgresql" not in args.databases:
            return rows
        pg = PostgresProcess()
        pg.start()
        try:
            engine = make_engine(pg.url, pool_size=10)
            try:
                rows.append(await run_backend("PostgreSQL", engine, platform, args.cases, args.backlog, workers=4))
            finally:
                await engine.dispose()
        finally:
            pg.stop()
    finally:
        server.terminate()
        server.join(5)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md alone")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    if args.cases < BATCH or args.backlog < BATCH:
        parser.error(f"--cases and --backlog must be at least {BATCH}")
    try:
        import uvloop

        rows = uvloop.run(main_async(args))
    except ImportError:
        rows = asyncio.run(main_async(args))
    text = table(["database", "workers", "delivery, cases/s", "live (commit + deliver), cases/s",
                  "backlog drained after the outage"], rows)
    text += "\n\n" + measures([
        ("workers", "in one process, 128 requests in flight in all; SQLite has one writer, so one worker"),
        ("platform", "stand-in in its own process: signatures, nonces, idempotency, validation"),
        ("machine", f"{multiprocessing.cpu_count()} cores, shared by producer, workers, database and stand-in"),
        ("PostgreSQL", "embedded test cluster, fsync off (a production server commits to disk)"),
    ])
    print(text)
    if not args.no_readme:
        write_block("delivery", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
