"""The call record's hang-up cause is Asterisk's where it has one: a real Asterisk announces a
caller's BYE with one hard ``ChannelHangupRequest``, with a cause only when the BYE had a Reason
header, then ``StasisEnd`` and (to an application following the channel) ``ChannelDestroyed`` with
cause 0, "Unknown" (docs/asterisk-behaviour.md). A soft request's cause is a flag, not a cause.
The call ends at the first event; the record keeps the most knowing cause: "caller hung up" for a
BYE without one, never "None" and never a flag."""

from __future__ import annotations

import pytest

from devtools.pbx_sim.callers import SimCall
from devtools.pbx_sim.server import PbxSim
from hotline.app import Application
from ivr.prompts.catalogue import PromptCatalogue
from tests.fixtures.waiting import eventually
from tests.support.calls import ended_record, requests_to

pytestmark = pytest.mark.slow


async def in_the_menu(pbx_sim: PbxSim, prompts: PromptCatalogue) -> SimCall:
    call = await pbx_sim.place_call("057112315", caller_id="13800138000")
    await call.wait_for_playback(prompts.media("main_menu"))
    return call


async def cause_is(app: Application, call: SimCall, cause: str | None) -> bool:
    record = await ended_record(app, call)
    return record is not None and record.hangup_cause == cause


async def test_a_caller_who_hangs_up_gets_the_cause_asterisk_gives_not_none(
    pbx_sim: PbxSim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await in_the_menu(pbx_sim, prompts)
    await call.hangup()  # a BYE without Reason: a hard request without a cause, StasisEnd, destroyed (0)
    await pbx_sim.wait_idle()
    await eventually(lambda: cause_is(hotline_app, call, "caller hung up"))
    record = await ended_record(hotline_app, call)
    assert record.outcome == "abandoned_in_menu"


async def test_a_hangup_request_without_a_cause_ends_the_call_and_the_destruction_gives_the_cause(
    pbx_sim: PbxSim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await in_the_menu(pbx_sim, prompts)
    channel = pbx_sim.channel(call.channel_id)
    pbx_sim.engine.emit_channel(channel, "ChannelHangupRequest", soft=True, cause=32)  # an ARI DELETE's flag
    # The call is over for us at once, with no cause yet (never the text "None", never the flag).
    record = await eventually(lambda: ended_record(hotline_app, call))
    assert record.hangup_cause is None
    assert call.channel_id not in hotline_app.ivr.flows

    pbx_sim.engine.hangup(channel, 1)  # then Asterisk destroys it: unallocated number
    await pbx_sim.wait_idle()
    await eventually(lambda: cause_is(hotline_app, call, "Unallocated (unassigned) number (1)"))


async def test_the_cause_comes_from_the_event_that_has_one_in_either_order_and_the_destruction_wins(
    pbx_sim: PbxSim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    call = await in_the_menu(pbx_sim, prompts)
    channel = pbx_sim.channel(call.channel_id)
    pbx_sim.engine.emit_channel(channel, "ChannelHangupRequest", cause=17)  # a BYE with a Reason: busy
    await eventually(lambda: cause_is(hotline_app, call, "hangup request (cause 17)"))
    pbx_sim.engine.emit_channel(channel, "ChannelHangupRequest")  # then one without: knows no more
    await hotline_app.dispatcher.drain()
    assert await cause_is(hotline_app, call, "hangup request (cause 17)")

    pbx_sim.engine.hangup(channel, 16)  # request, StasisEnd ("left the application": less), destroyed
    await pbx_sim.wait_idle()
    await eventually(lambda: cause_is(hotline_app, call, "Normal Clearing (16)"))
    assert not hotline_app.ivr._ending  # nothing kept once the channel is destroyed


async def test_a_caller_is_followed_by_its_channel_for_the_final_cause(
    pbx_sim: PbxSim, hotline_app: Application, prompts: PromptCatalogue
) -> None:
    # Nothing else follows a caller's endpoint: the desktops' SIP phones follow only the agents'
    # own (tests/desktop/test_phones.py).
    subscriptions = requests_to(pbx_sim, "POST", "/subscription")
    call = await in_the_menu(pbx_sim, prompts)
    await hotline_app.dispatcher.drain()  # the subscription goes after the first prompt
    assert [s["eventSource"] for s in subscriptions] == [f"channel:{call.channel_id}"]
    pbx_sim.engine.hangup(pbx_sim.channel(call.channel_id), 1)
    await pbx_sim.wait_idle()
    await eventually(lambda: cause_is(hotline_app, call, "Unallocated (unassigned) number (1)"))
