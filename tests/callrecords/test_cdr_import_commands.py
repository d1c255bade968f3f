"""The CDR import as operators run it: ``hotline callrecords import-cdr FILE``, and ``hotline
serve`` following the file; the imported calls reach the national platform exactly once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from callrecords.cdr import call_id_for
from callrecords.cdr_import import CdrImporter
from callrecords.feed import CallRecordFeed
from callrecords.models import CallRecord
from core.db import make_engine
from core.settings import PlatformSettings, Settings
from delivery.models import State
from delivery.outbox import Outbox
from delivery.services import PlatformDelivery
from devtools.platform_sim.server import PlatformSim
from hotline.cli import main as hotline_main
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually
from tests.support.cdr import ANSWERED, LINES, TIMEOUT
from tests.support.documents import ORG, SECRET


def an_hour_old(path: Path) -> None:
    """A file Asterisk stopped writing a while ago."""
    then = time.time() - 3600
    os.utime(path, (then, then))


async def count_records(url: str) -> int:
    engine = make_engine(url)
    try:
        async with AsyncSession(engine) as session:
            return len((await session.execute(select(CallRecord.call_id))).all())
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the command


@pytest.fixture(autouse=True)
def own_logging() -> Iterator[None]:
    """``hotline`` sets up the root logger for stderr: put back pytest's when a test ends."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_import_cdr_reports_progress_and_what_it_did_and_a_second_run_imports_nothing(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    cdr.write_text("".join(LINES), encoding="utf-8")
    an_hour_old(cdr)
    monkeypatch.setenv("HOTLINE_PROFILE", "test")
    monkeypatch.setenv("HOTLINE_LOG_LEVEL", "INFO")  # not aiosqlite's DEBUG chatter from its thread
    monkeypatch.setenv("HOTLINE_DATABASE__URL", sqlite_url)

    assert hotline_main(["callrecords", "import-cdr", str(cdr)]) == 0
    out, err = capsys.readouterr()
    assert "100% (2350/2350 bytes), 7 call(s) imported" in err
    assert (f"{cdr}: 9 line(s) read, 9 of calls served without the application; "
            "7 call(s) imported (5 for the national platform); 0 already imported") in out
    assert "outcomes: abandoned_in_menu 1, abandoned_in_queue 1, answered 1, failed 4" in out

    assert hotline_main(["callrecords", "import-cdr", str(cdr)]) == 0
    out, _err = capsys.readouterr()
    assert "0 call(s) imported (0 for the national platform); 7 already imported" in out
    assert asyncio.run(count_records(sqlite_url)) == 7


def test_import_cdr_of_a_file_that_is_not_there_says_so(
        tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOTLINE_PROFILE", "test")
    monkeypatch.setenv("HOTLINE_LOG_LEVEL", "INFO")  # not aiosqlite's DEBUG chatter from its thread
    monkeypatch.setenv("HOTLINE_DATABASE__URL", sqlite_url)
    assert hotline_main(["callrecords", "import-cdr", str(tmp_path / "nope.csv")]) == 1
    assert f"{tmp_path / 'nope.csv'} is not a file" in capsys.readouterr().err


# --------------------------------------------------------------------------- hotline serve


async def test_serve_imports_the_calls_asterisk_served_while_it_was_down_and_goes_on_following_the_file(
        settings: Settings, tmp_path: Path) -> None:
    cdr = tmp_path / "cdr-custom" / "hotline-cdr.csv"
    cdr.parent.mkdir()
    cdr.write_text("".join(LINES[:4]), encoding="utf-8")  # written while the application was down
    settings = settings.model_copy(update={"callrecords": settings.callrecords.model_copy(
        update={"cdr_file": cdr, "cdr_poll_s": 0.05, "cdr_settle_s": 0.0})})

    async with running(settings) as app:
        importer = app.cdr_import
        assert importer is not None

        async def imported(n: int) -> bool:
            return importer.totals.imported == n

        await eventually(lambda: imported(2))  # the calls in the file when we started
        with cdr.open("a", encoding="utf-8") as f:  # Asterisk goes on writing
            f.write("".join(LINES[4:]))
        await eventually(lambda: imported(7))
        rows = {r.key for r in await app.outbox.rows(kind="call_record")}
        assert {call_id_for(ANSWERED), call_id_for(TIMEOUT)} <= rows and len(rows) == 5

    # Restarted: nothing is imported twice.
    async with running(settings) as app:
        await asyncio.sleep(0.3)
        assert app.cdr_import is not None and app.cdr_import.totals.imported == 0
    assert await count_records(settings.database.url) == 7


async def test_without_a_cdr_file_serve_imports_nothing(hotline_app) -> None:  # type: ignore[no-untyped-def]
    assert hotline_app.settings.callrecords.cdr_file is None and hotline_app.cdr_import is None


# --------------------------------------------------------------------------- to the platform


@pytest.fixture
async def platform() -> AsyncIterator[PlatformSim]:
    sim = PlatformSim(orgs={ORG: SECRET})
    await sim.start()
    yield sim
    await sim.stop()


async def test_imported_calls_reach_the_national_platform_once_even_when_imported_again(
        engine: AsyncEngine, platform: PlatformSim, tmp_path: Path) -> None:
    cdr = tmp_path / "hotline-cdr.csv"
    cdr.write_text("".join(LINES), encoding="utf-8")
    an_hour_old(cdr)
    outbox = Outbox(engine)
    delivery = PlatformDelivery(outbox, PlatformSettings(url=platform.url, org_code=ORG, secret=SECRET,
                                                         poll_s=0.05, backoff_base_s=0.01, backoff_cap_s=0.1))
    await delivery.start()
    try:
        await CdrImporter(engine, after_write=CallRecordFeed(outbox)).import_file(cdr)

        async def all_delivered() -> bool:
            return (await outbox.counts()).get(("call_record", State.DELIVERED.value), 0) == 5

        await eventually(all_delivered, timeout=10)
        await CdrImporter(engine, after_write=CallRecordFeed(outbox)).import_file(cdr)
        await asyncio.sleep(0.3)
    finally:
        await delivery.stop()
    stored = {r["call_id"]: r for r in platform.call_records()}
    assert len(platform.call_records()) == 5
    assert stored[call_id_for(ANSWERED)]["outcome"] == "answered"
    assert stored[call_id_for(ANSWERED)]["agent_id"] == "1001"
    assert stored[call_id_for(TIMEOUT)]["outcome"] == "failed"
