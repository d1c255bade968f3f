"""At every connect the application has Asterisk send it only the event types some feature
handles (issue 15: three events in four of a whole call were read and dropped here), and a
switch that refuses the filter is only a warning."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.settings import Settings
from devtools.pbx_sim.server import PbxSim
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.fixtures.waiting import eventually


async def test_the_switch_is_told_at_connect_which_events_to_send_and_a_call_then_sends_no_other(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue
) -> None:
    sent: list[str] = []
    async with running(settings) as app:
        wanted = app.clients.events.wanted
        assert wanted is not None and {"StasisStart", "ChannelDtmfReceived", "PlaybackFinished"} <= wanted
        allowed, disallowed = pbx_sim.apps.filter_of(settings.ari.app)
        assert set(allowed) == wanted and disallowed == []
        assert "ChannelVarset" not in allowed and "ChannelDialplan" not in allowed

        checker = pbx_sim.apps._on_traffic  # the contract checker keeps looking

        def seen(kind: str, event: dict[str, Any]) -> None:
            sent.append(event["type"])
            if checker is not None:
                checker(kind, event)

        pbx_sim.apps._on_traffic = seen
        call = await pbx_sim.place_call("057112315", caller_id="13800138000")
        await call.wait_for_playback(prompts.media("main_menu"), timeout=10)
        await call.hangup()

        async def ended() -> bool:
            return "StasisEnd" in sent

        await eventually(ended)
    assert sent and set(sent) <= wanted, sorted(set(sent) - wanted)


async def test_a_switch_that_refuses_the_filter_is_a_warning_and_calls_go_on(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    pbx_sim.faults.inject(method="PUT", path=r"/eventFilter$", status=500)
    with caplog.at_level(logging.WARNING, logger="hotline.app"):
        async with running(settings):
            call = await pbx_sim.place_call("057112315", caller_id="13800138000")
            await call.wait_for_playback(prompts.media("main_menu"), timeout=10)
    assert any("did not take the application's event filter" in r.getMessage() for r in caplog.records)
