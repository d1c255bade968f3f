"""The CPU a call record costs to write: the writer as ``hotline serve`` runs it (the record
and its outbox row for the platform in one transaction), on a SQLite file.

At a quiet hour each ended call is a transaction of its own, found cold by the pauses between
calls; at a busy one a batch holds many. Both are measured: records written one at a time
with a pause after each, and back to back. The CPU is the whole process's (every thread), per
record; the pause is not in it.

    .venv/bin/python bench/call_records.py [--records 300] [--pause-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callrecords.feed import CallRecordFeed
from callrecords.services import CallRecordWriter
from calls.store import CallState
from core.db import make_engine
from core.migrate import create_schema
from delivery.outbox import Outbox

T0 = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
WARM_UP = 20


def ended_call() -> dict[str, Any]:
    """An answered call's final record, valid for the platform (it is queued, not held dead)."""
    state = CallState(call_id=str(uuid.uuid4()), channel_id="bench-1", hotline_number="12315",
                      business_line="general", area_code="0571", caller_phone="13800138000", language="zh-CN",
                      started_at=T0, state="ended")
    record = state.to_record()
    record.update(answered_at=T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=30), outcome="answered",
                  agent_id="1001", jurisdiction="330100")
    return record


async def cpu_per_record(writer: CallRecordWriter, records: int, pause_s: float) -> float:
    for _ in range(WARM_UP):
        writer.save(ended_call())
        await writer.flush()
    started = time.process_time()
    for _ in range(records):
        writer.save(ended_call())
        await writer.flush()
        if pause_s:
            await asyncio.sleep(pause_s)
    return 1000 * (time.process_time() - started) / records


async def main(records: int, pause_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-records-") as work:
        engine = make_engine(f"sqlite+aiosqlite:///{work}/hotline.db")
        await create_schema(engine)
        writer = CallRecordWriter(engine, batch_delay_s=0.0, after_write=CallRecordFeed(Outbox(engine)))
        writer.start()
        try:
            apart = await cpu_per_record(writer, records, pause_s)
            back_to_back = await cpu_per_record(writer, records, 0.0)
        finally:
            await writer.close()
            await engine.dispose()
    print(f"| call records written one per transaction, SQLite | CPU ms per record |\n| --- | --- |\n"
          f"| {pause_s * 1000:.0f} ms apart ({records}) | {apart:.2f} |\n"
          f"| back to back ({records}) | {back_to_back:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=300, help="records measured each way (300)")
    parser.add_argument("--pause-ms", type=float, default=20.0, help="pause after each record, the first way (20)")
    args = parser.parse_args()
    if args.records < 1 or args.pause_ms < 0:
        parser.error("--records must be at least 1 and --pause-ms not negative")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args.records, args.pause_ms / 1000))
    else:
        uvloop.run(main(args.records, args.pause_ms / 1000))
