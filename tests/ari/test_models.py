"""Typed events and errors: what our client makes of what Asterisk sends."""

from __future__ import annotations

import pytest

from ari.errors import AriNotFound, AriNotInStasis, AriUnavailable, AriUnprocessable, error_for
from ari.events import events_url
from ari.models import (
    ChannelHangupRequest,
    Dial,
    Endpoint,
    EndpointStateChange,
    EventParseError,
    PlaybackFinished,
    StasisStart,
    UnknownEvent,
    parse_event,
)
from tests.support.ari import CHANNEL


def test_stasis_start_carries_args_and_the_dialplan_location() -> None:
    event = parse_event({"type": "StasisStart", "application": "hotline", "timestamp": "t",
                         "args": ["12365", "quality", ""], "channel": CHANNEL})
    assert isinstance(event, StasisStart)
    assert event.args == ("12365", "quality", "")
    assert event.channel.caller_number == "13800138000"
    assert event.channel.in_stasis_app("hotline")
    assert not event.channel.in_stasis_app("other")
    assert event.channel.stasis_args() == ["12365", "quality", ""]
    assert event.route_key() == "1732440000.1"


def test_playback_events_route_to_their_target_channel_or_bridge() -> None:
    pb = {"id": "p1", "media_uri": "sound:hotline/main_menu", "target_uri": "channel:c9", "state": "done",
          "language": "zh_CN"}
    event = parse_event({"type": "PlaybackFinished", "application": "hotline", "timestamp": "t", "playback": pb})
    assert isinstance(event, PlaybackFinished) and event.route_key() == "c9"
    pb["target_uri"] = "bridge:b1"
    finished = parse_event({"type": "PlaybackFinished", "application": "hotline", "timestamp": "t", "playback": pb})
    assert finished.route_key() == "bridge:b1"


def test_an_endpoint_state_change_says_which_phone_and_whether_it_is_online() -> None:
    endpoint = {"technology": "PJSIP", "resource": "1001", "state": "offline", "channel_ids": []}
    event = parse_event({"type": "EndpointStateChange", "application": "hotline", "timestamp": "t",
                         "endpoint": endpoint})
    assert isinstance(event, EndpointStateChange)
    assert event.endpoint.name == "PJSIP/1001" and not event.endpoint.online
    assert event.route_key() == "endpoint:PJSIP/1001"
    # state is optional in the declaration: absent means Asterisk does not know.
    assert Endpoint.from_json({"technology": "PJSIP", "resource": "1002", "channel_ids": []}).state == "unknown"


def test_both_hangup_requests_of_a_bye_parse_with_and_without_a_cause() -> None:
    base = {"type": "ChannelHangupRequest", "application": "hotline", "timestamp": "t", "channel": CHANNEL}
    first, second = parse_event(base), parse_event({**base, "cause": 16, "soft": True})
    assert isinstance(first, ChannelHangupRequest) and isinstance(second, ChannelHangupRequest)
    assert (first.cause, first.soft) == (None, False)
    assert (second.cause, second.soft) == (16, True)
    assert first.route_key() == second.route_key() == CHANNEL["id"]


def test_a_dial_goes_to_the_dialled_channels_queue() -> None:
    event = parse_event({"type": "Dial", "application": "hotline", "timestamp": "t", "peer": CHANNEL,
                         "dialstring": "1001", "dialstatus": "ANSWER"})
    assert isinstance(event, Dial)
    assert (event.dialstatus, event.dialstring, event.route_key()) == ("ANSWER", "1001", CHANNEL["id"])


def test_unknown_events_are_kept_not_dropped_and_malformed_ones_are_named() -> None:
    assert isinstance(parse_event({"type": "DeviceStateChanged", "application": "a", "timestamp": "t"}), UnknownEvent)
    with pytest.raises(EventParseError, match="StasisStart"):
        parse_event({"type": "StasisStart", "application": "a", "timestamp": "t"})
    with pytest.raises(EventParseError, match="without a type"):
        parse_event({"application": "a"})


@pytest.mark.parametrize(
    ("status", "cls"),
    [(404, AriNotFound), (409, AriNotInStasis), (422, AriUnprocessable), (503, AriUnavailable), (0, AriUnavailable)],
)
def test_ari_errors_are_classified_by_what_they_mean_for_a_call(status: int, cls: type) -> None:
    err = error_for("POST", "/channels/x/answer", status, "Channel not found")
    assert isinstance(err, cls)
    assert "POST /channels/x/answer" in str(err)


def test_the_events_url_follows_the_ari_base_url() -> None:
    assert events_url("http://pbx:8088", "hotline") == "ws://pbx:8088/ari/events?app=hotline&subscribeAll=false"
    assert events_url("https://pbx:8089/", "hotline").startswith("wss://pbx:8089/ari/events?")
