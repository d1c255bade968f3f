"""Keeping the recordings root and its index in agreement, and deleting what is past its time.

:func:`check` compares the files under the root with the index: files nobody indexed
(orphans, also leftovers of an interrupted write), indexed files that are gone (missing),
and files whose SHA-256 is not the one recorded when they were stored (tampered or rotted).

:func:`purge` applies the retention policy: a recording is kept for the longest period of the
case types of its call's tickets (``[recordings] retention_years``; ``no_ticket`` for calls
without any), counted from when it was recorded, and never deleted while one of those
tickets is not closed. Its file is deleted and its row marked ``purged`` (the hash and
duration stay, as proof of what existed).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import RecordingSettings
from recordings.index import RecordingIndex
from recordings.models import Recording, RecordingState
from recordings.storage import StorageError, file_sha256, resolve
from tickets.models import Status, Ticket

Say = Callable[[str], None]


@dataclass
class CheckReport:
    orphans: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    mismatched: list[tuple[str, str, str, str]] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not (self.orphans or self.missing or self.mismatched)


def files_under(root: Path) -> set[str]:
    """Every file under ``root``, as a path relative to it (``/``-separated)."""
    found: set[str] = set()
    if not root.is_dir():
        return found
    for folder, _dirs, names in os.walk(root):
        for name in names:
            found.add(Path(folder, name).relative_to(root).as_posix())
    return found


async def check(root: Path, index: RecordingIndex, say: Say = print) -> CheckReport:
    report = CheckReport()
    on_disk = await asyncio.to_thread(files_under, root)
    rows = await index.in_state(RecordingState.STORED)
    indexed = {row.path for row in rows if row.path}
    for row in rows:
        report.checked += 1
        try:
            path = resolve(root, row.path or "")
        except StorageError as exc:
            report.missing.append((row.id, f"{row.path} ({exc})"))
            say(f"MISSING   {row.id}: {row.path}: {exc}")
            continue
        if row.path not in on_disk:
            report.missing.append((row.id, row.path or ""))
            say(f"MISSING   {row.id}: {row.path} (call {row.call_id}, segment {row.segment})")
            continue
        actual = await asyncio.to_thread(file_sha256, path)
        if actual != row.sha256:
            report.mismatched.append((row.id, row.path or "", row.sha256 or "", actual))
            say(f"MISMATCH  {row.id}: {row.path}: sha256 {actual}, {row.sha256} when stored")
    for orphan in sorted(on_disk - indexed):
        report.orphans.append(orphan)
        say(f"ORPHAN    {orphan}: on disk, not in the index")
    say(f"{report.checked} recording(s) checked: {len(report.orphans)} orphan(s), {len(report.missing)} missing, "
        f"{len(report.mismatched)} hash mismatch(es)")
    return report


@dataclass
class PurgeReport:
    purged: list[str] = field(default_factory=list)
    kept_open: list[str] = field(default_factory=list)
    kept_young: int = 0


def add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a common year
        return moment.replace(year=moment.year + years, day=28)


class RetentionPolicy:
    def __init__(self, settings: RecordingSettings) -> None:
        self._years = settings.retention_years

    def years(self, case_types: list[str | None]) -> tuple[int, str]:
        """The longest period of ``case_types`` and the type it is for."""
        if not case_types:
            return self._years["no_ticket"], "no_ticket"
        kinds = [k if k in self._years else "no_ticket" for k in case_types]
        kind = max(kinds, key=lambda k: self._years[k])
        return self._years[kind], kind


async def purge(settings: RecordingSettings, index: RecordingIndex, sessions: async_sessionmaker[AsyncSession], *,
                now: datetime, dry_run: bool = False, say: Say = print) -> PurgeReport:
    policy = RetentionPolicy(settings)
    report = PurgeReport()
    rows = await index.in_state(RecordingState.STORED)
    say(f"{len(rows)} stored recording(s) to look at{' (dry run: nothing is deleted)' if dry_run else ''}")
    for number, row in enumerate(rows, 1):
        tickets = await _tickets_of(sessions, row.call_id)
        open_ = [t_id for t_id, status, _kind in tickets if status != Status.CLOSED]
        if open_:
            report.kept_open.append(row.id)
            continue
        years, kind = policy.years([kind for _id, _status, kind in tickets])
        if now < add_years(row.created_at, years):
            report.kept_young += 1
            continue
        verb = "would purge" if dry_run else "purged"
        if not dry_run:
            assert settings.root is not None  # Settings fills it from var_dir
            await _delete(settings.root, row)
            await index.purged(row.id)
        report.purged.append(row.id)
        say(f"[{number}/{len(rows)}] {verb} {row.id} (call {row.call_id}, segment {row.segment}, "
            f"recorded {row.created_at:%Y-%m-%d}, kept {years} year(s) for {kind})")
    say(f"{'would purge' if dry_run else 'purged'} {len(report.purged)}; kept {len(report.kept_open)} of calls "
        f"with open tickets and {report.kept_young} within their retention period")
    return report


async def _tickets_of(sessions: async_sessionmaker[AsyncSession], call_id: str) -> list[tuple[str, str, str | None]]:
    async with sessions() as session:
        result = await session.execute(select(Ticket.id, Ticket.status, Ticket.case_type)
                                       .where(Ticket.call_id == call_id))
        return [(t_id, status, kind) for t_id, status, kind in result.all()]


async def _delete(root: Path, row: Recording) -> None:
    if row.path is None:
        return
    path = resolve(root, row.path)
    await asyncio.to_thread(path.unlink, missing_ok=True)
