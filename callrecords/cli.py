"""hotline callrecords: call records made outside the call path.

    hotline callrecords import-cdr FILE     import the calls Asterisk served without the
                                            application (its CDR file, dialplans/cdr_custom.conf)

Importing is idempotent: a call already imported (by ``hotline serve`` following the same
file, or an earlier run) is skipped, so a file may be imported again at any time, a rotated
copy included. Imported calls to the hotline numbers are queued for the national platform
like every other call record (``hotline outbox``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from callrecords.cdr_import import CdrImporter, ImportStats, agents_from_accounts
from callrecords.feed import CallRecordFeed
from core.arguments import action, command
from core.db import make_engine
from core.migrate import create_schema
from core.settings import Settings
from delivery.outbox import Outbox


def build_parser() -> argparse.ArgumentParser:
    example = "hotline callrecords import-cdr /var/log/asterisk/cdr-custom/hotline-cdr.csv"
    parser = command(
        "hotline callrecords",
        "Call records made outside the call path: the calls Asterisk served without the application.", example)
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = action(
        sub, "import-cdr", "import the calls of an Asterisk CDR file (cdr_custom.conf's layout)",
        "Import the calls of the CDR file dialplans/cdr_custom.conf makes Asterisk write. Idempotent:\n"
        "a call imported before (by hotline serve or an earlier run) is skipped, so a file, or a\n"
        "rotated copy, may be imported again at any time.",
        example, "hotline callrecords import-cdr hotline-cdr.csv.1")
    imp.add_argument("file", type=Path, help="e.g. /var/log/asterisk/cdr-custom/hotline-cdr.csv")
    return parser


def main(settings: Settings, argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    path: Path = args.file
    if not path.is_file():
        print(f"hotline callrecords: {path} is not a file", file=sys.stderr)
        return 1
    return asyncio.run(import_cdr(settings, path))


class _Progress:
    """A line on stderr about once a second while a big file is read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._last = 0.0

    def __call__(self, stats: ImportStats, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 1.0 and done < total:
            return
        self._last = now
        percent = 100 * done // total if total else 100
        print(f"{self._name}: {percent:3d}% ({done}/{total} bytes), {stats.imported} call(s) imported",
              file=sys.stderr, flush=True)


async def import_cdr(settings: Settings, path: Path) -> int:
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine, settings)
        outbox = Outbox(engine)
        # The file is read through as it is: a call whose lines Asterisk is writing this very
        # moment is left for the next import (or for `hotline serve`).
        importer = CdrImporter(engine, after_write=CallRecordFeed(outbox), agents=agents_from_accounts,
                               settle_s=settings.callrecords.cdr_settle_s)
        try:
            stats = await importer.import_file(path, progress=_Progress(path.name))
        except OSError as exc:
            print(f"hotline callrecords: cannot read {path}: {exc}", file=sys.stderr)
            return 1
        print(f"{path}: {stats.summary()}")
        return 0
    finally:
        await engine.dispose()
