"""The newcomer's first command: the demo runs the real code end to end and closes every call.

Every port the demo opens is a free one (tests.support.demo), so these tests pass while a demo
runs on the default ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.demo import DemoOptions, run_demo
from devtools.demo_callers import CallerModel
from tests.support.demo import demo_settings

pytestmark = pytest.mark.slow


async def test_the_demo_places_calls_through_the_real_code_and_records_every_one(
    redis_server, redis_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_settings(tmp_path, redis_url=redis_server.url, redis_prefix=redis_prefix)
    # Patient callers and short talks: four calls, each answered, in a few seconds at this scale.
    options = DemoOptions(callers=CallerModel(rate_per_min=6, patience_mean_s=10_000, talk_mean_s=5), calls=4,
                          time_scale=0.05, open_browser=False)

    assert await run_demo(settings, options) == 0

    out = capsys.readouterr().out
    assert "4 call record(s) in the database" in out
    assert (tmp_path / "sounds" / "zh_CN" / "hotline" / "main-menu.wav").is_file()
    # Every call ended, so none is left in a live state on its record.
    summary = out.split("4 call record(s)")[0]
    assert " waiting " not in summary and " main_menu " not in summary
    assert "script stopped" not in out
    # Nobody gave up: each caller who reached the queue was answered.
    assert "abandoned (0 %)" in out and "gave up waiting" not in out
    # Tickets of the answered calls and every call record reached the platform, once each.
    assert "4 call record(s) stored" in out and "0 stored twice" in out
    assert out.rstrip().endswith("[demo] finished: every part of the demo has ended")
