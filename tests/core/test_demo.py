"""The newcomer's first command: the demo runs the real code end to end and closes every call."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import load_settings
from devtools.demo import make_scripts, run_demo
from devtools.embedded import free_port

pytestmark = pytest.mark.slow


async def test_the_demo_places_calls_through_the_real_code_and_records_every_one(
    redis_server, redis_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        profile="demo",
        var_dir=tmp_path,
        ari={"url": f"http://127.0.0.1:{free_port()}"},
        redis={"url": redis_server.url, "prefix": redis_prefix},
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"},
        ivr={"sounds_dir": tmp_path / "sounds"},
        platform={"url": f"http://127.0.0.1:{free_port()}/api", "poll_s": 0.1, "backoff_base_s": 0.05,
                  "backoff_cap_s": 0.5},
    )
    assert await run_demo(settings, calls=4, open_browser=False, linger=False, time_scale=0.05) == 0

    out = capsys.readouterr().out
    assert "4 call record(s) in the database" in out
    assert "progress: 4/4 calls finished" in out
    assert (tmp_path / "sounds" / "zh_CN" / "hotline" / "main-menu.wav").is_file()
    # Every call ended, so none is left in a live state on its record.
    summary = out.split("4 call record(s)")[0]
    assert " waiting " not in summary and " main_menu " not in summary
    # Tickets of the answered calls and every call record reached the platform, once each.
    assert "4 call record(s) stored" in out and "0 stored twice" in out


def test_demo_callers_cover_every_behaviour_and_only_dial_hotline_numbers() -> None:
    scripts = make_scripts(50)
    assert {s.behaviour for s in scripts} == {"press", "wrong-then-press", "silent", "hang-up-early"}
    assert all(s.number[-5:] in {"12315", "12365", "12331", "12358", "12330"} for s in scripts)
