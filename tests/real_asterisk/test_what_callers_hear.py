"""On a real Asterisk 22: every hotline number reaches the application with its business
line, and callers hear the prompts, in order, in the audio their phone receives."""

from __future__ import annotations

import asyncio

import pytest

from core.settings import Settings
from devtools import audio
from devtools.asterisk import AsteriskInstance
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.app import running
from tests.fixtures.real_asterisk import (
    dial,
    eventually_one_channel,
    eventually_state,
    phones,
    prompt_sounds,
)
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dialled, line, area", [
    ("12315", "general", ""), ("12365", "quality", ""), ("12331", "food_drug", ""),
    ("12358", "price", ""), ("12330", "intellectual_property", ""), ("057112315", "general", "0571"),
])
async def test_every_hotline_number_reaches_the_application_as_its_business_line(
    real_asterisk: AsteriskInstance, real_app: Application, dialled: str, line: str, area: str
) -> None:
    async with phones(real_asterisk) as (carrier, _):
        call = await dial(carrier, dialled)
        channel = await eventually_one_channel(real_asterisk)
        state = await eventually_state(real_app, channel)
        assert state.business_line == line
        assert (state.area_code or "") == area
        await call.hang_up()


async def test_a_caller_hears_the_welcome_then_the_recording_notice_then_the_menu(
    real_asterisk: AsteriskInstance, real_app: Application, prompts: PromptCatalogue
) -> None:
    async with phones(real_asterisk) as (carrier, _):
        call = await dial(carrier, "12365")
        await asyncio.sleep(0.5)
        sounds = prompt_sounds(prompts, "welcome_quality", "recording_notice", "main_menu")
        expected = sum(len(s) for s in sounds.values()) / audio.RATE

        async def menu_heard() -> bool:
            return call.heard_seconds() >= expected + 0.5

        await eventually(menu_heard, timeout=expected + 10)
        await call.hang_up()
    heard = audio.heard_in_order(sounds, audio.pcm(call.rtp.pcm()))
    assert [h.name for h in heard] == ["welcome_quality", "recording_notice", "main_menu"], heard


async def test_a_caller_who_hangs_up_leaves_a_record_that_says_so_not_none(
    real_asterisk: AsteriskInstance, real_app: Application
) -> None:
    async with phones(real_asterisk) as (carrier, _):
        call = await dial(carrier, "12315")
        channel = await eventually_one_channel(real_asterisk)
        await eventually_state(real_app, channel)
        await asyncio.sleep(0.5)
        await call.hang_up()

    async def ended():  # type: ignore[no-untyped-def]
        await real_app.dispatcher.drain()
        await real_app.records.flush()
        record = await real_app.call_records.by_channel(channel)
        return record if record is not None and record.ended_at is not None else None

    record = await eventually(ended, timeout=10)
    # A BYE without a Reason header: Asterisk's final cause is 0, "Unknown"; the record says who.
    assert record.hangup_cause == "caller hung up"
    assert record.outcome == "abandoned_in_menu"


async def test_a_caller_hung_up_by_the_switch_leaves_its_final_cause_on_the_record(
    real_asterisk: AsteriskInstance, on_real_asterisk: Settings
) -> None:
    # The caller's destruction, after it left the application, comes through the subscription to
    # its own channel: the desktops' SIP phones (production, as here) follow only the agents'
    # endpoints, not the callers' trunk.
    desktop = on_real_asterisk.desktop.model_copy(update={
        "phone_mode": "sip", "sip_ws_url": "wss://pbx.example:8089/ws", "sip_domain": "pbx.example"})
    async with running(on_real_asterisk.model_copy(update={"desktop": desktop})) as app, \
            phones(real_asterisk) as (carrier, _):
        assert not app.ari.follows(app.settings.ari.app, "endpoint:PJSIP")
        await dial(carrier, "12315")
        channel = await eventually_one_channel(real_asterisk)
        await eventually_state(app, channel)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(real_asterisk.ari, "DELETE", f"/channels/{channel}", reason_code="17")

        async def with_cause():  # type: ignore[no-untyped-def]
            await app.dispatcher.drain()
            await app.records.flush()
            record = await app.call_records.by_channel(channel)
            return record if record is not None and record.hangup_cause else None

        record = await eventually(with_cause, timeout=10)
        assert record.hangup_cause == "User busy (17)"
        assert not app.ivr._ending  # nothing kept waiting for a destruction that came
