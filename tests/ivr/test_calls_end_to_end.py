"""Calls through the Asterisk stand-in, our real dialplan and the running application."""

from __future__ import annotations

import asyncio

import pytest

from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import app_settings
from tests.support.calls import requests_to

LINES = {
    "12315": "general",
    "12365": "quality",
    "12331": "food_drug",
    "12358": "price",
    "12330": "intellectual_property",
}


async def record_of(app: Application, channel_id: str):  # type: ignore[no-untyped-def]
    await app.records.flush()
    return await app.call_records.by_channel(channel_id)


async def settle(app: Application) -> None:
    """Let the app catch up: every call the stand-in has ended is closed in the app, every
    event received is handled, every record written. (Events cross a WebSocket: a call can
    have ended in the stand-in a moment before the app hears of it.)"""
    live = {c.id for c in await app.ari.list_channels()}
    for _ in range(200):
        if set(app.ivr.flows) <= live:
            break
        await asyncio.sleep(0.01)
    await app.dispatcher.drain()
    await app.records.flush()


@pytest.mark.parametrize("number", sorted(LINES))
async def test_a_caller_on_each_hotline_hears_its_welcome_presses_1_and_is_queued_as_a_complaint(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue, number: str
) -> None:
    line = LINES[number]
    call = await pbx_sim.place_call(number, caller_id="13800138000")
    await call.wait_for_playback(prefix=prompts.media(f"welcome_{line}"))
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    call.send_dtmf("1")
    await call.wait_for_playback(prefix=prompts.media("queued"))
    await settle(hotline_app)

    record = await record_of(hotline_app, call.channel_id)
    assert record.hotline_number == number and record.business_line == line
    assert record.caller_phone == "13800138000"
    assert record.menu_path == ["main_menu:1:complaint"]
    assert record.choice == "complaint" and record.recognized_by == "dtmf"
    assert record.queued_at is not None and record.ended_at is None

    await call.hangup()
    await call.wait_ended()
    await settle(hotline_app)
    record = await record_of(hotline_app, call.channel_id)
    assert record.outcome == "abandoned_in_queue"
    assert record.ended_at is not None and record.ended_at >= record.started_at


async def test_without_speech_the_welcome_the_notice_and_the_menu_are_one_prompt(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    # One playback: one request, one end to hear of, one state saved, and no gap between them.
    plays = requests_to(pbx_sim, "POST", "/play")
    call = await pbx_sim.place_call("12365", caller_id="13900000005")
    await call.wait_for_playback_finished(prefix=prompts.media("main_menu"))
    media = ",".join(prompts.media(k) for k in ("welcome_quality", "recording_notice", "main_menu"))
    assert [query["media"] for query in plays] == [media]
    stored = await hotline_app.ivr.svc.store.load(call.channel_id)
    assert stored is not None and stored.state == "main_menu"


async def test_a_caller_dialling_with_an_area_code_keeps_it_on_the_call_record(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("057112331", caller_id="057187654321")
    await call.wait_for_playback(prefix=prompts.media("welcome_food_drug"))
    await settle(hotline_app)
    record = await record_of(hotline_app, call.channel_id)
    assert (record.hotline_number, record.business_line, record.area_code) == ("12331", "food_drug", "0571")


async def test_a_caller_who_keys_during_the_welcome_stops_it_and_is_routed_at_once(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12358", caller_id="13900000001")
    await call.wait_for_playback(prefix=prompts.media("welcome_price"))
    call.send_dtmf("3")
    await call.wait_for_playback(prefix=prompts.media("queued"))
    await settle(hotline_app)
    assert prompts.media("main_menu") not in call.played
    record = await record_of(hotline_app, call.channel_id)
    assert record.choice == "consultation"


async def test_a_wrong_key_is_told_no_match_and_the_menu_is_repeated(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13900000002")
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    call.send_dtmf("7")
    await call.wait_for_playback(prefix=prompts.media("no_match"))
    call.send_dtmf("2")
    await call.wait_for_playback(prefix=prompts.media("queued"))
    await settle(hotline_app)
    record = await record_of(hotline_app, call.channel_id)
    assert record.menu_path == ["main_menu:7:no_match", "main_menu:2:report"]
    assert record.choice == "report"


async def test_a_silent_caller_is_reprompted_then_sent_to_an_operator(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12365", caller_id="13900000003")
    await call.wait_for_playback(prefix=prompts.media("transfer_operator"), timeout=10)
    await settle(hotline_app)
    played = call.played
    assert played.count(prompts.media("no_input")) == 2  # three attempts: first + two reprompts
    assert prompts.media("too_many_attempts") in played
    record = await record_of(hotline_app, call.channel_id)
    assert record.choice == "operator"
    assert record.menu_path == ["main_menu:timeout"] * 3 + ["main_menu:too_many_attempts"]


async def test_a_caller_who_hangs_up_in_the_welcome_leaves_nothing_behind(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12330", caller_id="13900000004")
    await call.wait_for_playback(prefix=prompts.media("welcome_intellectual_property"))
    await call.hangup()
    await call.wait_ended()
    await settle(hotline_app)
    record = await record_of(hotline_app, call.channel_id)
    assert record.outcome == "abandoned_in_menu" and record.ended_at is not None
    assert hotline_app.ivr.flows == {}
    assert len(hotline_app.timers) == 0
    assert await hotline_app.ivr.svc.store.live_channel_ids() == set()
    await pbx_sim.wait_idle(timeout=5)


async def test_a_caller_who_hangs_up_while_the_no_input_timer_runs_leaves_no_timer(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13900000005")
    await call.wait_for_playback_finished(prefix=prompts.media("main_menu"))
    await call.hangup()
    await call.wait_ended()
    await settle(hotline_app)
    assert len(hotline_app.timers) == 0 and hotline_app.ivr.flows == {}


async def test_when_the_events_connection_drops_calls_go_on_after_the_reconnect(
    pbx_sim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13900000006")
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    await hotline_app.events.disconnect()
    await asyncio.sleep(0.05)
    await hotline_app.wait_connected()
    await settle(hotline_app)
    call.send_dtmf("1")
    await call.wait_for_playback(prefix=prompts.media("queued"))
    assert hotline_app.events.connections >= 2


async def test_a_call_whose_app_was_restarted_is_resumed_from_redis(
    pbx_sim, redis_server, redis_prefix: str, sqlite_url: str, prompts: PromptCatalogue
) -> None:
    # The caller has a person's time to key (the tests' 0.3 s no-input timeout would run out
    # while one application stops and the next starts on a loaded machine: a reprompt, not
    # what this test is about).
    settings = app_settings(pbx_sim.url, redis_server.url, redis_prefix, sqlite_url, no_input_timeout_s=30)
    first = Application(settings)
    await first.start()
    await first.wait_connected()
    call = await pbx_sim.place_call("12331", caller_id="13900000007")
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    await settle(first)
    await first.stop()  # the process goes away; the channel stays in Stasis

    second = Application(settings)
    await second.start()
    try:
        await second.wait_connected()
        await settle(second)
        assert call.channel_id in second.ivr.flows
        call.send_dtmf("1")
        await call.wait_for_playback(prefix=prompts.media("queued"))
        await settle(second)
        record = await record_of(second, call.channel_id)
        assert record.menu_path == ["main_menu:1:complaint"]
        assert record.business_line == "food_drug"
    finally:
        await second.stop()


async def test_a_call_that_ended_while_the_app_was_down_is_closed_on_restart(
    pbx_sim, settings, prompts: PromptCatalogue
) -> None:
    first = Application(settings)
    await first.start()
    await first.wait_connected()
    call = await pbx_sim.place_call("12315", caller_id="13900000008")
    await call.wait_for_playback(prefix=prompts.media("main_menu"))
    await settle(first)
    await first.stop()
    await call.hangup()
    await call.wait_ended()

    second = Application(settings)
    await second.start()
    try:
        await second.wait_connected()
        await settle(second)
        record = await record_of(second, call.channel_id)
        assert record.outcome == "abandoned_in_menu" and record.ended_at is not None
        assert await second.ivr.svc.store.live_channel_ids() == set()
    finally:
        await second.stop()


async def test_without_the_app_the_dialplan_still_serves_the_caller(pbx_sim, prompts: PromptCatalogue) -> None:
    call = await pbx_sim.place_call("12315", caller_id="13900000009")
    await call.wait_ended(timeout=10)
    assert call.stasis_status == "FAILED"
    assert any("fallback" in m for m in call.played), call.played


async def test_a_burst_of_calls_larger_than_the_redis_pool_is_served_not_dropped(
    pbx_sim, settings_with_two_redis_connections, prompts: PromptCatalogue
) -> None:
    app = Application(settings_with_two_redis_connections)
    await app.start()
    try:
        await app.wait_connected()
        calls = [await pbx_sim.place_call("12365", caller_id=f"1390000{i:04d}") for i in range(60)]
        await asyncio.gather(*(c.wait_for_playback(prompts.media("main_menu"), timeout=20) for c in calls))
        await settle(app)
        assert len(app.ivr.flows) == 60
        assert await app.ivr.svc.store.live_channel_ids() == {c.channel_id for c in calls}
    finally:
        await app.stop()
