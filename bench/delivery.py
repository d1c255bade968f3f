"""Delivery to the national platform, end to end: cases committed to the outbox, claimed by
workers, signed, sent to the platform stand-in (in its own process, enforcing the whole
contract), settled. On SQLite and on PostgreSQL (started here).

Two figures per database:
- **throughput**: cases per second from the first commit until the platform stored the last,
  with the producer committing cases (100 per transaction) while the workers deliver;
- **backlog drain**: cases pile up during a platform outage (503 with Retry-After); the time
  from the outage's end until the platform has all of them.

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

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import measures, table, write_block  # noqa: E402
from delivery.outbox import Outbox  # noqa: E402
from delivery.services import PlatformDelivery  # noqa: E402
from hotline.db import create_schema, make_engine  # noqa: E402
from hotline.embedded import PostgresProcess, free_port  # noqa: E402
from hotline.settings import PlatformSettings  # noqa: E402
from tests.delivery.documents import ORG, SECRET, case_document  # noqa: E402

BATCH = 100


def _serve_platform(port: int) -> None:
    """The stand-in, alone in a process (the other core): its CPU is not ours to measure."""
    from national.sim.server import PlatformSim

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

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, object]:
        async with http.get(f"{self.root}/sim/stats") as resp:
            return await resp.json()

    async def outage(self, http: aiohttp.ClientSession, seconds: float) -> None:
        async with http.put(f"{self.root}/sim/faults", json={"outage_s": seconds}) as resp:
            resp.raise_for_status()

    async def wait_stored(self, http: aiohttp.ClientSession, count: int, timeout: float = 600) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if int((await self.stats(http))["stored"]) >= count:  # type: ignore[call-overload]
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


async def run_backend(name: str, engine: AsyncEngine, platform: Platform, cases: int, backlog: int) -> list[object]:
    await create_schema(engine)
    outbox = Outbox(engine)
    settings = PlatformSettings(url=platform.url, org_code=ORG, secret=SECRET, workers=4, concurrency=32,
                                claim_batch=128, poll_s=0.2)
    async with aiohttp.ClientSession() as http:
        base = int((await platform.stats(http))["stored"])  # type: ignore[call-overload]
        delivery = PlatformDelivery(outbox, settings)
        await delivery.start()
        try:
            started = time.perf_counter()
            await produce(outbox, base, cases)
            done = await platform.wait_stored(http, base + cases)
            throughput = cases / (done - started)

            await platform.outage(http, 3600)
            await produce(outbox, base + cases, backlog)
            await asyncio.sleep(3.0)  # the workers meet the outage and back off
            await platform.outage(http, 0)
            ended = time.perf_counter()
            drained = await platform.wait_stored(http, base + cases + backlog)
        finally:
            await delivery.stop()
    drain_s = drained - ended
    print(f"{name}: {throughput:,.0f} cases/s; backlog of {backlog:,} drained in {drain_s:.2f} s", flush=True)
    return [name, f"{throughput:,.0f}", f"{backlog:,}", f"{drain_s:.2f} s", f"{backlog / drain_s:,.0f}"]


async def main_async(args: argparse.Namespace) -> list[list[object]]:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve_platform, args=(port,), daemon=True)
    server.start()
    platform = Platform(port)
    rows = []
    try:
        async with aiohttp.ClientSession() as http:
            await platform.wait_up(http)
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
            try:
                rows.append(await run_backend("SQLite", engine, platform, args.cases, args.backlog))
            finally:
                await engine.dispose()
        pg = PostgresProcess()
        pg.start()
        try:
            engine = make_engine(pg.url, pool_size=10)
            try:
                rows.append(await run_backend("PostgreSQL", engine, platform, args.cases, args.backlog))
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
    args = parser.parse_args()
    if args.cases < BATCH or args.backlog < BATCH:
        parser.error(f"--cases and --backlog must be at least {BATCH}")
    try:
        import uvloop

        rows = uvloop.run(main_async(args))
    except ImportError:
        rows = asyncio.run(main_async(args))
    text = table(["database", "cases/s end to end", "backlog", "drain after outage", "drain cases/s"], rows)
    text += "\n\n" + measures([
        ("workers", "4 in one process, 32 requests in flight each, claims of 128"),
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
