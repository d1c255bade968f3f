"""hotline recordings check|purge [--dry-run]: the recordings root against its index, and
the retention policy (see recordings.maintenance)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from core.arguments import action, command
from core.db import make_engine, sessionmaker
from core.migrate import create_schema
from core.settings import Settings
from recordings.index import RecordingIndex
from recordings.maintenance import check, purge


def main(settings: Settings, argv: list[str]) -> int:
    parser = command("hotline recordings",
                     "Call recordings on disk ([recordings] root) and in their index in the database.",
                     "hotline recordings check", "hotline recordings purge --dry-run", "hotline recordings purge")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    action(sub, "check", "report orphan files, missing files and hash mismatches (exit 1 if any)",
           "Compare the recordings root with the index: files without a row, rows without a file,\n"
           "files whose SHA-256 changed. Exit 1 when it finds any.",
           "hotline recordings check")
    p = action(sub, "purge", "delete recordings past their retention period (never of open tickets)",
               "Delete the recordings kept longer than [recordings] retention_years for their call's case type;\n"
               "never those of a ticket still open.",
               "hotline recordings purge --dry-run    # only say what would go", "hotline recordings purge")
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted; delete nothing")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return asyncio.run(_run(settings, args.action, dry_run=getattr(args, "dry_run", False)))


async def _run(settings: Settings, action: str, *, dry_run: bool) -> int:
    engine = make_engine(settings.database.url)
    try:
        await create_schema(engine, settings)
        index = RecordingIndex(sessionmaker(engine))
        root = settings.recordings.root
        assert root is not None  # Settings fills it from var_dir
        print(f"recordings root {root.resolve()}", flush=True)
        if action == "check":
            report = await check(root, index, say=_say)
            return 0 if report.ok else 1
        await purge(settings.recordings, index, sessionmaker(engine), now=datetime.now(UTC),
                    dry_run=dry_run, say=_say)
        return 0
    finally:
        await engine.dispose()


def _say(line: str) -> None:
    print(line, flush=True)
