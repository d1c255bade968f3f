"""Load shedding through the stand-in, our real dialplan and the running application: a new call
beyond ``[overload] max_calls`` or arriving while the application is behind its events is sent
to the dialplan's busy message and recorded as shed; calls in progress go on as before; the
metrics and the log say so."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from callrecords.cdr import SHED
from core.settings import OverloadSettings, Settings
from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from ivr.plugin import Ivr
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running

BUSY = "sound:hotline/lines-busy"


def overloaded(settings: Settings, max_calls: int = 0, max_event_delay_s: float = 0.0) -> Settings:
    return settings.model_copy(update={"overload": OverloadSettings(max_calls=max_calls,
                                                                    max_event_delay_s=max_event_delay_s)})


async def turned_away(call: SimCall) -> None:
    """The caller hears the busy message from the dialplan and is hung up, busy."""
    await call.wait_for_playback(BUSY)
    await call.wait_ended(timeout=5)
    assert call.played == [BUSY]
    assert call.hangup_cause == 17
    assert call.channel.variables["CDR(hotline_path)"] == SHED


async def in_the_menu(call: SimCall, prompts: PromptCatalogue) -> None:
    await call.wait_for_playback(prompts.media("main_menu"), timeout=10)


async def test_a_call_beyond_max_calls_hears_the_busy_message_and_the_calls_in_progress_go_on(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        async with running(overloaded(settings, max_calls=2)) as app:
            first = await pbx_sim.place_call("12315", caller_id="13800138001")
            second = await pbx_sim.place_call("057112365", caller_id="13800138002")
            await in_the_menu(first, prompts)
            await in_the_menu(second, prompts)

            third = await pbx_sim.place_call("057112315", caller_id="13900139003")
            await turned_away(third)
            assert third.channel.variables["CDR(hotline_number)"] == "12315"
            assert third.channel.variables["CDR(hotline_area)"] == "0571"
            # Nothing of it in the application: no flow, no state in Redis, no record of ours.
            await app.dispatcher.drain()
            assert third.channel_id not in app.ivr.flows
            assert await app.ivr.svc.store.load(third.channel_id) is None
            await app.records.flush()
            assert await app.call_records.by_channel(third.channel_id) is None

            # The calls in progress were not touched: they go on through the menu.
            for call in (first, second):
                assert not call.ended and call.channel_id in app.ivr.flows
            first.send_dtmf("1")
            await first.wait_for_playback(prompts.media("queued"), timeout=5)

            # One ends: below 90 % of 2, new calls are taken again.
            await second.hangup()
            await second.wait_ended()
            fourth = await pbx_sim.place_call("12315", caller_id="13800138004")
            await in_the_menu(fourth, prompts)

            m = app.metrics
            assert m.value("hotline_calls_shed_total", reason="max_calls") == 1
            assert m.value("hotline_calls_shed_total", reason="event_delay") == 0
            assert m.value("hotline_shedding") == 0
            assert m.value("hotline_calls_started_total") == 3
            assert m.value("hotline_calls_live") == 2
            for call in (first, fourth):
                await call.hangup()
                await call.wait_ended()
    lines = [r for r in caplog.records if r.name == "calls.overload"]
    assert [(r.levelno, r.getMessage()[:40]) for r in lines] == [
        (logging.WARNING, "shedding new calls: 2 calls in progress "),
        (logging.WARNING, "stopped shedding new calls after 0 s (1 "),
    ]
    assert lines[-1].getMessage().endswith("1 turned away in all (1 for max_calls)")
    # The shed caller's number is in no log line at INFO or above (masked where it is at all).
    assert not [r for r in caplog.records if "13900139003" in r.getMessage()]


async def test_calls_arriving_while_the_app_is_behind_its_events_are_shed_until_it_catches_up(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    # The switch's clock is 30 s ahead of ours: that skew alone must shed nothing.
    pbx_sim.apps.clock_offset_s = 30.0
    with caplog.at_level(logging.INFO, logger="calls.overload"):
        async with running(overloaded(settings, max_event_delay_s=1.0)) as app:
            taken = await pbx_sim.place_call("12315", caller_id="13800138001")
            await in_the_menu(taken, prompts)
            # Now events reach the application 2 s after Asterisk stamped them.
            pbx_sim.apps.clock_offset_s = 30.0 - 2.0
            late = await pbx_sim.place_call("12331", caller_id="13800138002")
            await turned_away(late)
            guard = app.parts.api("ivr")
            assert isinstance(guard, Ivr)
            assert 1.5 < guard.overload.delay < 3.5  # 2 s, and however long this busy machine took
            assert app.metrics.value("hotline_shedding") == 1
            # Meanwhile the call in progress is served as ever, its events late or not.
            taken.send_dtmf("1")
            await taken.wait_for_playback(prompts.media("queued"), timeout=5)
            # Caught up: the next new call is taken again, and the metrics say it all.
            pbx_sim.apps.clock_offset_s = 30.0
            again = await pbx_sim.place_call("12315", caller_id="13800138003")
            await in_the_menu(again, prompts)
            assert app.metrics.value("hotline_shedding") == 0
            assert app.metrics.value("hotline_calls_shed_total", reason="event_delay") == 1
            assert app.metrics.value("hotline_event_delay_seconds") < 0.5
            for call in (taken, again):
                await call.hangup()
                await call.wait_ended()
    messages = [r.getMessage() for r in caplog.records if r.name == "calls.overload"]
    assert len(messages) == 2
    assert re.fullmatch(r"shedding new calls: events \d\.\d s behind \(max 1\.0 s\); callers hear the busy message",
                        messages[0]), messages[0]
    assert messages[1].startswith("stopped shedding new calls") and messages[1].endswith(
        "1 turned away in all (1 for event_delay)")


async def test_the_running_app_serves_its_metrics_to_this_host(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue
) -> None:
    async with running(overloaded(settings, max_calls=1)) as app:
        first = await pbx_sim.place_call("12315", caller_id="13800138001")
        await in_the_menu(first, prompts)
        second = await pbx_sim.place_call("12315", caller_id="13800138002")
        await turned_away(second)
        assert app.web_url is not None
        async with aiohttp.ClientSession() as http, http.get(f"{app.web_url}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        await first.hangup()
        await first.wait_ended()
        await asyncio.sleep(0)
    for line in ('hotline_calls_shed_total{reason="max_calls"} 1', 'hotline_calls_shed_total{reason="event_delay"} 0',
                 "hotline_shedding 1", "hotline_calls_live 1", "hotline_calls_started_total 1",
                 "hotline_calls_admitted_total 1", "hotline_overload_max_calls 1"):
        assert line + "\n" in text, line
    assert "# TYPE hotline_event_delay_seconds gauge\n" in text


@pytest.mark.parametrize("failures, hears_the_message", [(1, True), (2, False)])
async def test_a_turned_away_call_is_never_left_in_silence_when_ari_fails(
    pbx_sim: PbxSim, settings: Settings, prompts: PromptCatalogue, failures: int, hears_the_message: bool
) -> None:
    # Overloaded, Asterisk may answer 5xx or time out: the request is tried once more, and if
    # that fails too the caller is hung up busy rather than left in Stasis with no flow.
    pbx_sim.faults.inject(r"/continue$", method="POST", status=500, count=failures)
    async with running(overloaded(settings, max_calls=1)) as app:
        first = await pbx_sim.place_call("12315", caller_id="13800138001")
        await in_the_menu(first, prompts)
        second = await pbx_sim.place_call("12315", caller_id="13800138002")
        await second.wait_ended(timeout=5)
        assert second.hangup_cause == 17
        assert (second.played == [BUSY]) is hears_the_message
        assert app.metrics.value("hotline_calls_shed_failed_total") == (0 if hears_the_message else 1)
        assert second.channel_id not in app.ivr.flows
        await first.hangup()
        await first.wait_ended()
