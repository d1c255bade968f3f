"""One fixture, two switches: every conformance scenario runs on the Asterisk stand-in and on
the real Asterisk 22 of the test session, and expects the same transcript from both.

Both are configured from the same files: the stand-in reads the configuration that
``hotline asterisk install`` renders for the real one (dialplan, PJSIP endpoints with the
agents' desk phones, music classes) and plays the same prompts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.settings import load_settings
from devtools.asterisk import AsteriskInstance
from devtools.pbx_sim.server import PbxSim
from pbx_config.render import render
from tests.fixtures.ari_contract import AriContract, TrafficChecker
from tests.fixtures.real_asterisk import AGENT_PHONES, SOUNDS_CACHE
from tests.support.conformance import AsteriskSwitch, StandInSwitch, Switch

#: The stand-in plays prompts at this fraction of their length: only the order of events is
#: compared, never how long a prompt takes.
STAND_IN_TIME_SCALE = 0.05


def stand_in_config(directory: Path) -> Path:
    """The real Asterisk's configuration, rendered as for it; the stand-in's dialplan path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render(load_settings(profile="test"), AGENT_PHONES, data_dir=directory).items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory / "extensions.conf"


@pytest.fixture(params=["stand-in", "asterisk"])
async def switch(request: pytest.FixtureRequest, ari_contract: AriContract, tmp_path: Path) -> AsyncIterator[Switch]:
    """A switch with ARI connected as ``hotline``; afterwards nothing may be left up, and every
    request, answer and event must have been one that Asterisk 22 declares."""
    checker = TrafficChecker(ari_contract)
    sw: StandInSwitch | AsteriskSwitch
    if request.param == "stand-in":
        sim = PbxSim(dialplan_path=stand_in_config(tmp_path / "etc"), sounds_dir=SOUNDS_CACHE,
                     recordings_dir=tmp_path / "recording", time_scale=STAND_IN_TIME_SCALE, on_traffic=checker)
        await sim.start()
        sw = StandInSwitch(sim, checker)
        try:
            await sw.open()
            yield sw
            await sw.close()
        finally:
            await sim.stop()
    else:
        instance: AsteriskInstance = request.getfixturevalue("real_asterisk")
        sw = AsteriskSwitch(instance, checker)
        await sw.open()
        try:
            yield sw
        finally:
            await sw.close()
    checker.assert_clean()
