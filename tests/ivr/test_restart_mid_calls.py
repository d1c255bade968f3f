"""Killing the application (SIGKILL) in the middle of 50 calls loses none of them."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.prompts.catalogue import PromptCatalogue

pytestmark = pytest.mark.slow


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
    )


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_killing_the_app_in_the_middle_of_50_calls_loses_none(
    pbx_sim, redis_server, redis_prefix: str, tmp_path: Path, prompts: PromptCatalogue
) -> None:
    db = tmp_path / "calls.db"
    env = {
        **os.environ,
        "HOTLINE_PROFILE": "test",
        "HOTLINE_LOG_LEVEL": "INFO",
        "HOTLINE_ARI__URL": pbx_sim.url,
        "HOTLINE_ARI__USERNAME": "hotline",
        "HOTLINE_ARI__PASSWORD": "hotline",
        "HOTLINE_REDIS__URL": redis_server.url,
        "HOTLINE_REDIS__PREFIX": redis_prefix,
        "HOTLINE_DATABASE__URL": f"sqlite+aiosqlite:///{db}",
        # Long enough that nobody is reprompted while the app is down.
        "HOTLINE_IVR__NO_INPUT_TIMEOUT_S": "30",
    }
    log = tmp_path / "serve.log"
    menu = prompts.media("main_menu")
    app = serve(env, log)
    try:
        await wait_for(lambda: pbx_sim.app_connected("hotline"), 20, "the app to connect")
        calls = [await pbx_sim.place_call("12315", caller_id=f"1380000{i:04d}") for i in range(50)]
        await asyncio.gather(*(c.wait_for_playback(prefix=menu, timeout=20) for c in calls))
        early, late = calls[:25], calls[25:]
        for c in early:
            c.send_dtmf("1")
        await asyncio.gather(*(c.wait_for_playback(prefix=prompts.media("queued"), timeout=20) for c in early))

        app.send_signal(signal.SIGKILL)
        app.wait(timeout=10)
        await wait_for(lambda: not pbx_sim.app_connected("hotline"), 10, "the app to be gone")
        assert all(not c.ended for c in calls), "channels must stay in Stasis while the app is down"

        app = serve(env, log)
        await wait_for(lambda: pbx_sim.app_connected("hotline"), 20, "the restarted app to connect")
        # The restarted app resumes each menu call by playing the menu again.
        await wait_for(lambda: all(c.played.count(menu) >= 2 for c in late), 20, "menus to be replayed")
        for c in late:
            c.send_dtmf("2")
        await asyncio.gather(*(c.wait_for_playback(prefix=prompts.media("queued"), timeout=20) for c in late))
        for c in calls:
            await c.hangup()
        await asyncio.gather(*(c.wait_ended(timeout=10) for c in calls))
        await asyncio.sleep(0.5)
    finally:
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=15)

    rows = sqlite3.connect(db).execute(
        "select channel_id, menu_path, choice, outcome, ended_at from call_records"
    ).fetchall()
    by_channel = {r[0]: r for r in rows}
    assert len(by_channel) == 50, log.read_text()[-3000:]
    for c in early:
        assert by_channel[c.channel_id][2] == "complaint"
    for c in late:
        assert by_channel[c.channel_id][2] == "report"
    assert all(r[3] == "abandoned_in_queue" and r[4] is not None for r in rows)
