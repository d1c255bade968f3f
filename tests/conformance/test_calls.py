"""A caller's call, on both switches: into Stasis, answered, prompts, DTMF, hold, hang-ups.

Each scenario records what the switch said and compares it with what a real Asterisk 22.10.1
says (the expected transcripts below were read off the real one); the stand-in must say the
same. See docs/asterisk-behaviour.md for the why of each behaviour.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.conformance import CALLER, RTP_STATS, Switch, answered_call, channel_of
from tests.support.transcript import Transcript, of_channel

#: The caller's channel as it enters Stasis (FIELD-NOTES), every field: our dialplan answers it
#: just before Stasis() (set-up latency, issue 15), so it is Up and answering it again is a no-op.
CALLER_IN_STASIS = {
    "id": "caller", "name": "PJSIP/carrier-<n>", "state": "Up", "protocol_id": "<call-id>",
    "caller": {"name": "", "number": CALLER}, "connected": {"name": "", "number": ""}, "accountcode": "",
    "dialplan": {"context": "hotline-stasis", "exten": "12315", "priority": 3, "app_name": "Stasis",
                 "app_data": "hotline,12315,general,"},
    "creationtime": "<time>", "language": "zh_CN",
}
#: A prompt that exists (1.8 s on the real switch) and one that does not.
PROMPT = "sound:hotline/callers-ahead-before"
MISSING = "sound:hotline/no-such-prompt"


def as_answered(playback: dict[str, Any]) -> dict[str, Any]:
    """A playback as ``POST .../play`` answers it. A real Asterisk takes that snapshot while
    the playback may already have started on an idle channel: ``queued`` or ``playing``."""
    assert playback["state"] in ("queued", "playing"), playback
    return {**playback, "state": "queued"}


async def test_a_call_enters_stasis_answered_with_its_args_dialplan_caller_and_language(switch: Switch) -> None:
    leg = await switch.call()
    t = Transcript(switch.ari.events, caller=leg.channel_id)
    start = await switch.ari.wait_event("StasisStart")
    assert start["args"] == ["12315", "general", ""]
    assert t.channel(start["channel"]) == CALLER_IN_STASIS
    # The same channel over REST, and in the list.
    got = await switch.ari.request("GET", f"/channels/{leg.channel_id}")
    assert got.status == 200 and t.channel(got.body) == CALLER_IN_STASIS
    listed = await switch.ari.request("GET", "/channels")
    assert [t.channel(c) for c in listed.body] == [CALLER_IN_STASIS]
    assert (await switch.ari.request("DELETE", f"/channels/{leg.channel_id}")).status == 204
    await switch.ari.wait_event("StasisEnd")
    await switch.ari.quiet()
    assert t.lines() == [
        "StasisStart args=['12315', 'general', ''] channel=caller:Up",
        # Answered by the dialplan: its media statistics come before the hang-up.
        *RTP_STATS,
        "ChannelHangupRequest cause=32 channel=caller:Up soft=True",
        "StasisEnd channel=caller:Up",
    ]


async def test_answer_then_a_prompt_plays_and_a_missing_one_fails(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ok = await switch.ari.request("POST", f"/channels/{ch}/play", media=PROMPT)
    bad = await switch.ari.request("POST", f"/channels/{ch}/play", media=MISSING)
    assert (ok.status, bad.status) == (201, 201)
    assert t.playback(as_answered(ok.body)) == {"id": "pb1", "media_uri": PROMPT, "target_uri": "channel:caller",
                                                "language": "zh_CN", "state": "queued"}
    assert ok.headers["Location"] == f"/ari/playbacks/{ok.body['id']}"
    assert t.playback(bad.body)["state"] == "queued"  # it fails only when its turn comes
    await switch.ari.wait_event("PlaybackFinished", lambda e: e["playback"]["id"] == bad.body["id"])
    gone = await switch.ari.request("GET", f"/playbacks/{ok.body['id']}")
    assert (gone.status, gone.body) == (404, {"message": "Playback not found"})
    await switch.ari.request("DELETE", f"/channels/{ch}")
    await switch.ari.wait_event("StasisEnd")
    await switch.ari.quiet()
    assert t.lines() == [
        "StasisStart args=['12315', 'general', ''] channel=caller:Up",
        f"PlaybackStarted playback=pb1({PROMPT} -> playing)",
        f"PlaybackFinished playback=pb1({PROMPT} -> done)",
        f"PlaybackStarted playback=pb2({MISSING} -> playing)",
        f"PlaybackFinished playback=pb2({MISSING} -> failed)",
        *RTP_STATS,
        # DELETE is a soft hang-up: 32 is Asterisk's AST_SOFTHANGUP_EXPLICIT flag, not a Q.850 cause.
        "ChannelHangupRequest cause=32 channel=caller:Up soft=True",
        "StasisEnd channel=caller:Up",
    ]


async def test_a_media_list_plays_under_one_id_and_a_repeated_media_parameter_keeps_the_last(
    switch: Switch
) -> None:
    switch.put_media("conf-a", 0.2)
    switch.put_media("conf-b", 0.2)
    ch, t = await answered_call(switch)
    listed = await switch.ari.request("POST", f"/channels/{ch}/play", media="recording:conf-a,recording:conf-b")
    assert listed.status == 201
    assert t.playback(as_answered(listed.body)) == {"id": "pb1", "media_uri": "recording:conf-a",
                                       "next_media_uri": "recording:conf-b", "target_uri": "channel:caller",
                                       "language": "zh_CN", "state": "queued"}
    await switch.ari.wait_event("PlaybackFinished", lambda e: e["playback"]["id"] == listed.body["id"])
    twice = await switch.ari.request("POST", f"/channels/{ch}/play", query=[
        ("media", "recording:conf-a"), ("media", "recording:conf-b")])
    assert twice.status == 201 and t.playback(twice.body)["media_uri"] == "recording:conf-b"
    # Repeating it is what the contract checker exists to catch in our client; here it is on purpose.
    repeated = [v for v in switch.checker.violations if "'media' is repeated" in v]
    assert len(repeated) == 1
    switch.checker.violations.remove(repeated[0])
    assert "next_media_uri" not in twice.body
    await switch.ari.wait_event("PlaybackFinished", lambda e: e["playback"]["id"] == twice.body["id"])
    await switch.ari.request("DELETE", f"/channels/{ch}")
    await switch.ari.wait_event("StasisEnd")
    playbacks = [e for e in switch.ari.events if e["type"].startswith("Playback")]
    assert t.lines(playbacks) == [
        "PlaybackStarted playback=pb1(recording:conf-a next recording:conf-b -> playing)",
        "PlaybackContinuing playback=pb1(recording:conf-a next recording:conf-b -> continuing)",
        "PlaybackStarted playback=pb1(recording:conf-b -> playing)",
        "PlaybackFinished playback=pb1(recording:conf-b -> done)",
        # Only the last value of a repeated parameter counts: conf-a is never played.
        "PlaybackStarted playback=pb2(recording:conf-b -> playing)",
        "PlaybackFinished playback=pb2(recording:conf-b -> done)",
    ]


async def test_music_on_hold_is_heard_in_class_hotline_and_silence_without_a_class_or_in_an_unknown_one(
    switch: Switch
) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", f"/channels/{ch}/answer")
    await leg.answered()
    heard = {}
    for moh_class in ("hotline", None, "jazz"):
        params = {"mohClass": moh_class} if moh_class else {}
        assert (await switch.ari.request("POST", f"/channels/{ch}/moh", **params)).status == 204
        heard[moh_class] = await leg.hears_music()
        assert (await switch.ari.request("DELETE", f"/channels/{ch}/moh")).status == 204
    # No class is class "default", which a source build of Asterisk (and our musiconhold.conf)
    # does not have: 204 all the same, and the caller hears nothing at all.
    assert heard == {"hotline": True, None: False, "jazz": False}
    assert (await switch.ari.request("DELETE", f"/channels/{ch}/moh")).status == 204  # none playing: fine
    await leg.hang_up()
    await switch.ari.wait_event("StasisEnd")
    t = Transcript(switch.ari.events, caller=ch)
    assert t.lines() == [
        "StasisStart args=['12315', 'general', ''] channel=caller:Up",
        *RTP_STATS,
        "ChannelHangupRequest channel=caller:Up",  # music on hold announces nothing
        "StasisEnd channel=caller:Up",
    ]


async def test_dtmf_from_the_callers_phone_arrives_with_its_digit_and_duration(switch: Switch) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", f"/channels/{ch}/answer")
    await leg.answered()
    await leg.dtmf("1#", duration_ms=160)
    await switch.ari.wait_event("ChannelDtmfReceived", lambda e: e["digit"] == "#")
    dtmf = [e for e in switch.ari.events if e["type"] == "ChannelDtmfReceived"]
    t = Transcript(switch.ari.events, caller=ch)
    assert t.lines(dtmf) == [
        "ChannelDtmfReceived channel=caller:Up digit='1' duration_ms=160",
        "ChannelDtmfReceived channel=caller:Up digit='#' duration_ms=160",
    ]
    await leg.hang_up()
    await switch.ari.wait_event("StasisEnd")


@pytest.mark.parametrize("q850_cause, request_line", [
    (None, "ChannelHangupRequest channel=caller:Up"),
    # With a Reason header, its cause, and the SIP status Asterisk maps it to (17: 486 Busy Here).
    (17, "ChannelHangupRequest cause=17 channel=caller:Up tech_cause=486"),
])
async def test_a_callers_bye_is_one_hangup_request_with_the_reason_headers_cause_then_stasis_end_and_nothing_more(
    switch: Switch, q850_cause: int | None, request_line: str
) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", f"/channels/{ch}/answer")
    await leg.answered()
    await leg.hang_up(q850_cause)
    await switch.ari.wait_event("StasisEnd")
    await switch.ari.quiet(0.5)
    t = Transcript(switch.ari.events, caller=ch)
    # Subscribed only through Stasis, the application hears nothing of the channel after
    # StasisEnd: no ChannelDestroyed (see the test with a channel subscription below).
    assert t.lines() == [
        "StasisStart args=['12315', 'general', ''] channel=caller:Up",
        *RTP_STATS,
        request_line,
        "StasisEnd channel=caller:Up",
    ]
    gone = await switch.ari.request("DELETE", f"/channels/{ch}")
    assert (gone.status, gone.body) == (404, {"message": "Channel not found"})


@pytest.mark.parametrize("how, final", [
    # A BYE without a Reason header leaves the channel without a cause: 0.
    ("bye", "cause=0 cause_txt='Unknown' channel=caller:Up"),
    ("bye17", "cause=17 cause_txt='User busy' channel=caller:Up tech_cause=486"),
    ("delete", "cause=16 cause_txt='Normal Clearing' channel=caller:Up"),
    ("delete17", "cause=17 cause_txt='User busy' channel=caller:Up tech_cause=486"),
])
async def test_subscribed_to_the_channel_the_application_also_hears_the_end_of_the_dialplan_and_the_destruction(
    switch: Switch, how: str, final: str
) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", f"/channels/{ch}/answer")
    await leg.answered()
    sub = await switch.ari.request("POST", "/applications/hotline/subscription", eventSource=f"channel:{ch}")
    assert sub.status == 200 and sub.body["channel_ids"] == [ch]
    if how.startswith("bye"):
        await leg.hang_up(17 if how == "bye17" else None)
        first = "ChannelHangupRequest cause=17 channel=caller:Up tech_cause=486" if how == "bye17" else \
            "ChannelHangupRequest channel=caller:Up"
    else:
        params = {"reason_code": "17"} if how == "delete17" else {}
        assert (await switch.ari.request("DELETE", f"/channels/{ch}", **params)).status == 204
        first = "ChannelHangupRequest cause=32 channel=caller:Up soft=True"
    await switch.ari.wait_event("ChannelDestroyed")
    t = Transcript(switch.ari.events, caller=ch)
    assert t.lines(of_channel(switch.ari.events, ch)) == [
        "StasisStart args=['12315', 'general', ''] channel=caller:Up",
        *RTP_STATS,
        first,
        "StasisEnd channel=caller:Up",
        # The dialplan after Stasis() ends: 16 is AST_SOFTHANGUP_APPUNLOAD, not a Q.850 cause.
        "ChannelHangupRequest cause=16 channel=caller:Up soft=True" + (" tech_cause=486" if how == "bye17" else ""),
        f"ChannelDestroyed {final}",
    ]


async def test_a_hold_from_the_callers_phone_is_announced_on_its_channel(switch: Switch) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", f"/channels/{ch}/answer")
    await leg.answered()
    await leg.hold(True)
    await switch.ari.wait_event("ChannelHold")
    await leg.hold(False)
    await switch.ari.wait_event("ChannelUnhold")
    holds = [e for e in switch.ari.events if e["type"] in ("ChannelHold", "ChannelUnhold")]
    t = Transcript(switch.ari.events, caller=ch)
    assert t.lines(holds) == [
        # The class the phone's endpoint suggests (pjsip.conf moh_suggest; Asterisk's default: "default").
        "ChannelHold channel=caller:Up musicclass='hotline'",
        "ChannelUnhold channel=caller:Up",
    ]
    await leg.hang_up()
    await switch.ari.wait_event("StasisEnd")


async def test_deleting_a_channel_twice_answers_404_the_second_time(switch: Switch) -> None:
    leg = await switch.call()
    first = await switch.ari.request("DELETE", f"/channels/{leg.channel_id}", reason="normal")
    assert (first.status, first.body) == (204, None)
    await switch.ari.wait_event("StasisEnd", channel_of(leg.channel_id))
    # The hang-up completes a moment after StasisEnd; until then the channel is still there.
    for _ in range(50):
        if (await switch.ari.request("GET", f"/channels/{leg.channel_id}")).status == 404:
            break
        await asyncio.sleep(0.02)
    second = await switch.ari.request("DELETE", f"/channels/{leg.channel_id}")
    assert (second.status, second.body) == (404, {"message": "Channel not found"})
