"""The call records feature: one row per call, written behind the calls, fed to the outbox;
and the import of the calls Asterisk served without us (its CDR file)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from callrecords.cdr_import import CdrImporter, agents_from_accounts
from callrecords.feed import CallRecordFeed
from callrecords.services import CallRecordRepository, CallRecordWriter
from core.db import sessionmaker
from core.plugins import Feature, Step
from core.settings import Settings
from delivery.outbox import Outbox


@dataclass(frozen=True)
class CallRecords:
    """What other features get: the writer the calls report to, and the reading side."""

    writer: CallRecordWriter
    repository: CallRecordRepository
    #: None unless ``[callrecords] cdr_file`` is set.
    cdr_import: CdrImporter | None


async def build(*, settings: Settings, db: AsyncEngine, outbox: Outbox) -> Feature:
    s = settings.callrecords
    # Ended calls are queued for the national platform in the transaction that saves them.
    writer = CallRecordWriter(db, after_write=CallRecordFeed(outbox), batch_delay_s=s.batch_delay_s)
    cdr_import = None
    if s.cdr_file is not None:
        # Calls Asterisk served without us (its fallback while we were down, numbers that are
        # not ours) have only a CDR: imported from the file cdr_custom.conf writes, once each.
        cdr_import = CdrImporter(db, after_write=CallRecordFeed(outbox), agents=agents_from_accounts,
                                 settle_s=s.cdr_settle_s)
    records = CallRecords(writer, CallRecordRepository(sessionmaker(db), unwritten=writer.unwritten), cdr_import)

    async def start() -> None:
        writer.start()
        if cdr_import is not None and s.cdr_file is not None:
            cdr_import.start(s.cdr_file, s.cdr_poll_s)

    stop: list[tuple[str, Step]] = [("writing call records", writer.close)]
    if cdr_import is not None:
        stop.insert(0, ("stopping the CDR import", cdr_import.close))
    return Feature(api=records, start=start, stop=stop)
