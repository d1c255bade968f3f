"""An application's event filter, on both switches: how the application has Asterisk send it only
the event types it handles (hotline/app.py, issue 15), and how Asterisk keeps and reads the
filter (res/stasis/app.c: an empty body clears it, a list that is not a list of types is 400)."""

from __future__ import annotations

from tests.support.conformance import Switch, channel_of

PROMPT = "sound:hotline/callers-ahead-before"
ALLOWED = ["ChannelHangupRequest", "StasisEnd", "StasisStart"]


async def test_with_a_filter_only_the_allowed_types_come_and_an_empty_body_clears_it(switch: Switch) -> None:
    try:
        set_ = await switch.ari.request("PUT", "/applications/hotline/eventFilter",
                                        body={"allowed": [{"type": kind} for kind in ALLOWED], "disallowed": []})
        assert set_.status == 200
        assert (set_.body["events_allowed"], set_.body["events_disallowed"]) == ([{"type": k} for k in ALLOWED], [])
        mark = len(switch.ari.events)
        leg = await switch.call()
        ch = leg.channel_id
        # A prompt played (PlaybackStarted, PlaybackFinished and the media statistics not sent).
        assert (await switch.ari.request("POST", f"/channels/{ch}/play", media=PROMPT)).status == 201
        assert (await switch.ari.request("DELETE", f"/channels/{ch}")).status == 204
        await switch.ari.wait_event("StasisEnd", channel_of(ch), after=mark)
        await switch.ari.quiet()
        assert [e["type"] for e in switch.ari.events[mark:]] == ["StasisStart", "ChannelHangupRequest", "StasisEnd"]
    finally:
        cleared = await switch.ari.request("PUT", "/applications/hotline/eventFilter", body={})
    assert (cleared.status, cleared.body["events_allowed"], cleared.body["events_disallowed"]) == (200, [], [])


async def test_a_filter_that_is_not_a_list_of_types_is_refused(switch: Switch) -> None:
    refused = await switch.ari.request("PUT", "/applications/hotline/eventFilter", body={"allowed": "StasisStart"})
    assert (refused.status, refused.body) == (400, {"message": "Invalid format definition"})
    unknown = await switch.ari.request("PUT", "/applications/no-such-app/eventFilter", body={})
    assert (unknown.status, unknown.body) == (404, {"message": "Application not found"})
