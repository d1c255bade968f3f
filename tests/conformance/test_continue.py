"""``POST /channels/{id}/continue`` into a place of the application's choosing, on both switches:
how a call turned away under overload reaches the dialplan's ``[hotline-shed]`` (ivr/stasis.py),
and how Asterisk reads the place (res/ari/resource_channels.c): a label that is not there, a
label that is a number, a context without an extension."""

from __future__ import annotations

from typing import Any

from tests.support.conformance import RTP_STATS, Switch, channel_of
from tests.support.transcript import Transcript


def where(event: dict[str, Any]) -> tuple[str, str, int, str]:
    plan = event["channel"]["dialplan"]
    return plan["context"], plan["exten"], plan["priority"], event["dialplan_app"]


async def test_continued_into_hotline_shed_the_caller_runs_its_steps_and_is_hung_up_busy(switch: Switch) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    sub = await switch.ari.request("POST", "/applications/hotline/subscription", eventSource=f"channel:{ch}")
    assert sub.status == 200
    mark = len(switch.ari.events)
    # What Asterisk refuses first: a label that is not there, and priority 0 given as a label.
    missing = await switch.ari.request("POST", f"/channels/{ch}/continue", context="hotline-shed",
                                       extension="12315", label="nowhere")
    assert (missing.status, missing.body) == (404, {"message": "Requested label can not be found"})
    zero = await switch.ari.request("POST", f"/channels/{ch}/continue", context="hotline-shed",
                                    extension="12315", label="0")
    assert (zero.status, zero.body) == (400, {"message": "Requested priority is illegal"})
    # As the application turns a call away: the context, the hotline number, priority 1.
    went = await switch.ari.request("POST", f"/channels/{ch}/continue", context="hotline-shed",
                                    extension="12315", priority="1")
    assert (went.status, went.body) == (204, None)
    await switch.ari.wait_event("ChannelDestroyed", channel_of(ch), after=mark, timeout=15)
    events = of_channel_after(switch, ch, mark)
    steps = [where(e) for e in events if e["type"] == "ChannelDialplan"]
    assert steps == [
        ("hotline-shed", "12315", 1, "NoOp"),
        ("hotline-shed", "12315", 2, "Set"),
        ("hotline-shed", "12315", 3, "Set"),
        ("hotline-shed", "12315", 4, "Set"),
        ("hotline-shed", "12315", 5, "Set"),
        ("hotline-shed", "12315", 6, "Playback"),
        ("hotline-shed", "12315", 7, "Hangup"),
    ]
    t = Transcript(switch.ari.events, caller=ch)
    assert [line for line in t.lines(events) if not line.startswith("ChannelDialplan")] == [
        "StasisEnd channel=caller:Up",
        "ChannelVarset channel=caller:Up value='SUCCESS' variable='PLAYBACKSTATUS'",
        # Hangup(17) sets the cause and ends the dialplan: a soft hang-up (16, APPUNLOAD) that
        # does not carry it yet, then the media's statistics, then the destruction with it.
        "ChannelHangupRequest cause=16 channel=caller:Up soft=True",
        *RTP_STATS,
        "ChannelDestroyed cause=17 cause_txt='User busy' channel=caller:Up tech_cause=486",
    ]


async def test_a_context_without_an_extension_continues_at_its_s_extension(switch: Switch) -> None:
    leg = await switch.call()
    ch = leg.channel_id
    await switch.ari.request("POST", "/applications/hotline/subscription", eventSource=f"channel:{ch}")
    mark = len(switch.ari.events)
    # from-pstn's "s" (a trunk that sends no number) goes to 12315: back into Stasis, from the top.
    went = await switch.ari.request("POST", f"/channels/{ch}/continue", context="from-pstn")
    assert went.status == 204
    again = await switch.ari.wait_event("StasisStart", after=mark, timeout=10)
    assert again["args"] == ["12315", "general", ""] and again["channel"]["id"] == ch
    steps = [where(e) for e in of_channel_after(switch, ch, mark) if e["type"] == "ChannelDialplan"]
    assert steps[:2] == [("from-pstn", "s", 1, "Set"), ("from-pstn", "s", 2, "Goto")]
    assert (await switch.ari.request("DELETE", f"/channels/{ch}")).status == 204
    await switch.ari.wait_event("ChannelDestroyed", channel_of(ch), after=mark, timeout=10)


def of_channel_after(switch: Switch, channel_id: str, mark: int) -> list[dict[str, Any]]:
    return [e for e in switch.ari.events[mark:] if channel_of(channel_id)(e)]
