"""``hotline recordings check`` finds orphan files, missing files and hash mismatches; ``purge``
deletes what is past its retention, longest case type first, never a recording of an open
ticket. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sessionmaker
from core.settings import RecordingSettings, load_settings
from recordings import cli
from recordings.index import RecordingIndex
from recordings.maintenance import add_years, check, purge
from tests.support.recordings import stored_recording
from tickets.models import Ticket

NOW = datetime(2031, 6, 1, tzinfo=UTC)


@pytest.fixture
def index(engine: AsyncEngine) -> RecordingIndex:
    # Recorded on 2026-12-08 (four and a half years before NOW).
    return RecordingIndex(sessionmaker(engine), clock=lambda: datetime(2026, 12, 8, 2, tzinfo=UTC))


async def add_ticket(engine: AsyncEngine, call_id: str, case_type: str, status: str) -> None:
    at = datetime(2026, 12, 8, tzinfo=UTC)
    async with sessionmaker(engine)() as session, session.begin():
        session.add(Ticket(id=str(uuid.uuid4()), call_id=call_id, case_type=case_type, status=status,
                           received_at=at, created_at=at, updated_at=at, caller_anonymous=False,
                           delivery_state="delivered"))


def flip_two_bytes(path: Path) -> None:
    """Change two bytes of the audio in place: same size, another hash."""
    with open(path, "r+b") as f:
        f.seek(60)
        f.write(b"\x00\x01")


async def test_check_finds_orphans_missing_files_and_hash_mismatches(index: RecordingIndex, tmp_path: Path) -> None:
    root = tmp_path / "store"
    fine = await stored_recording(index, root, seed=1)
    gone = await stored_recording(index, root, seed=2)
    tampered = await stored_recording(index, root, seed=3)
    (root / (gone.path or "")).unlink()
    flip_two_bytes(root / (tampered.path or ""))
    (root / "2026/12/08/330100/stray.wav").write_bytes(b"RIFF")
    (root / "2026/12/08/330100/.half.wav.123.tmp").write_bytes(b"RI")
    lines: list[str] = []

    report = await check(root, index, say=lines.append)

    assert not report.ok and report.checked == 3
    assert report.orphans == ["2026/12/08/330100/.half.wav.123.tmp", "2026/12/08/330100/stray.wav"]
    assert report.missing == [(gone.id, gone.path)]
    assert [m[0] for m in report.mismatched] == [tampered.id]
    assert any(line.startswith("MISMATCH") and tampered.id in line for line in lines)
    assert fine.id not in "".join(lines[:-1])
    assert lines[-1] == "3 recording(s) checked: 2 orphan(s), 1 missing, 1 hash mismatch(es)"


async def test_a_clean_root_checks_clean(index: RecordingIndex, tmp_path: Path) -> None:
    await stored_recording(index, tmp_path / "store")
    assert (await check(tmp_path / "store", index, say=lambda _l: None)).ok


async def test_purge_keeps_open_tickets_and_young_recordings_and_deletes_the_rest(
        engine: AsyncEngine, index: RecordingIndex, tmp_path: Path) -> None:
    root = tmp_path / "store"
    settings = RecordingSettings(root=root, retention_years={"complaint": 5, "consultation": 1, "no_ticket": 2})
    open_complaint = await stored_recording(index, root, seed=1)       # open ticket: kept whatever its age
    await add_ticket(engine, open_complaint.call_id, "consultation", "accepted")
    closed_complaint = await stored_recording(index, root, seed=2)     # 5 years: not yet
    await add_ticket(engine, closed_complaint.call_id, "complaint", "closed")
    await add_ticket(engine, closed_complaint.call_id, "consultation", "closed")  # the longest wins
    closed_consultation = await stored_recording(index, root, seed=3)  # 1 year: past
    await add_ticket(engine, closed_consultation.call_id, "consultation", "closed")
    no_ticket = await stored_recording(index, root, seed=4)            # 2 years: past
    lines: list[str] = []

    dry = await purge(settings, index, sessionmaker(engine), now=NOW, dry_run=True, say=lines.append)
    assert sorted(dry.purged) == sorted([closed_consultation.id, no_ticket.id])
    assert all((root / (r.path or "")).exists() for r in (closed_consultation, no_ticket))
    assert any("would purge" in line and no_ticket.id in line for line in lines)

    done = await purge(settings, index, sessionmaker(engine), now=NOW, say=lines.append)
    assert sorted(done.purged) == sorted(dry.purged) and done.kept_open == [open_complaint.id]
    assert done.kept_young == 1
    for row in (closed_consultation, no_ticket):
        after = await index.get(row.id)
        assert after is not None and after.state == "purged" and after.purged_at is not None
        assert after.sha256 == row.sha256  # the proof of what existed stays
        assert not (root / (row.path or "")).exists()
    assert (root / (open_complaint.path or "")).exists() and (root / (closed_complaint.path or "")).exists()
    assert (await check(root, index, say=lambda _l: None)).ok

    later = await purge(settings, index, sessionmaker(engine), now=add_years(NOW, 10), say=lines.append)
    assert later.purged == [closed_complaint.id] and later.kept_open == [open_complaint.id]


def test_years_are_counted_on_the_calendar() -> None:
    assert add_years(datetime(2028, 2, 29, tzinfo=UTC), 1) == datetime(2029, 2, 28, tzinfo=UTC)
    assert add_years(datetime(2026, 12, 8, tzinfo=UTC), 3) - timedelta(days=1) < datetime(
        2029, 12, 8, tzinfo=UTC)


def test_the_check_command_exits_non_zero_when_something_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   sqlite_url: str) -> None:
    root = tmp_path / "store"
    (root / "2026").mkdir(parents=True)
    settings = load_settings(profile="test", database={"url": sqlite_url}, recordings={"root": str(root)})
    assert cli.main(settings, ["check"]) == 0
    (root / "2026" / "stray.wav").write_bytes(b"RIFF")
    assert cli.main(settings, ["check"]) == 1
    assert "ORPHAN    2026/stray.wav" in capsys.readouterr().out
    assert cli.main(settings, ["purge", "--dry-run"]) == 0
