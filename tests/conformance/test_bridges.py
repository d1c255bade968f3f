"""Bridges on both switches: create, join, leave, destroy, record the mix, snoop, externalMedia."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

from tests.support.conformance import Switch, answered_call

#: Asterisk's refusal of a second recording under a name in use.
RECORDING_EXISTS = "Recording 'conf-rec' already exists and can not be overwritten"


class _Sink(asyncio.DatagramProtocol):
    """An externalMedia host: counts the RTP packets it gets and keeps the first."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)


def bridge_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] in ("ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed",
                                               "BridgeCreated")]


async def test_bridges_are_created_joined_left_and_destroyed_with_the_real_answers(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ari = switch.ari
    made = await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-bridge", name="conformance")
    assert made.status == 200
    assert t.bridge(made.body) == {
        "id": "conf-bridge", "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
        "creator": "Stasis", "name": "conformance", "channels": [], "creationtime": "<time>",
        "video_mode": "talker",
    }
    again = await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-bridge")
    assert (again.status, again.body) == (409, {"message": "Bridge with id 'conf-bridge' already exists"})
    unknown = await ari.request("POST", "/bridges/conf-bridge/addChannel", channel="no-such-channel")
    assert (unknown.status, unknown.body) == (400, {"message": "Channel not found"})

    assert (await ari.request("POST", "/bridges/conf-bridge/addChannel", channel=ch)).status == 204
    # Adding a member again takes it out and puts it back in.
    assert (await ari.request("POST", "/bridges/conf-bridge/addChannel", channel=ch)).status == 204
    got = await ari.request("GET", "/bridges/conf-bridge")
    assert got.status == 200 and t.bridge(got.body)["channels"] == ["caller"]

    assert (await ari.request("POST", "/bridges/conf-bridge/removeChannel", channel=ch)).status == 204
    not_in = await ari.request("POST", "/bridges/conf-bridge/removeChannel", channel=ch)
    assert (not_in.status, not_in.body) == (422, {"message": "Channel not in this bridge"})
    nobody = await ari.request("POST", "/bridges/conf-bridge/removeChannel", channel="no-such-channel")
    assert (nobody.status, nobody.body) == (400, {"message": "Channel not found"})

    assert (await ari.request("DELETE", "/bridges/conf-bridge")).status == 204
    twice = await ari.request("DELETE", "/bridges/conf-bridge")
    assert (twice.status, twice.body) == (404, {"message": "Bridge not found"})
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd")
    await ari.quiet()
    assert t.lines(bridge_events(ari.events)) == [
        "ChannelEnteredBridge bridge=conf-bridge['caller'] channel=caller:Up",
        "ChannelLeftBridge bridge=conf-bridge[] channel=caller:Up",
        "ChannelEnteredBridge bridge=conf-bridge['caller'] channel=caller:Up",
        "ChannelLeftBridge bridge=conf-bridge[] channel=caller:Up",
        # Its last channel taken out over ARI, the application no longer follows the bridge:
        # no BridgeDestroyed.
    ]


async def test_a_bridge_destroyed_announces_its_end_only_to_an_application_still_following_it(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ari = switch.ari
    await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-bridge")
    await ari.request("POST", "/bridges/conf-bridge/addChannel", channel=ch)
    assert (await ari.request("DELETE", "/bridges/conf-bridge")).status == 204
    await ari.wait_event("ChannelLeftBridge")
    await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-bridge-2")
    await ari.request("POST", "/bridges/conf-bridge-2/addChannel", channel=ch)
    await ari.wait_event("ChannelEnteredBridge", lambda e: e["bridge"]["id"] == "conf-bridge-2")
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd")
    assert (await ari.request("DELETE", "/bridges/conf-bridge-2")).status == 204
    await ari.wait_event("BridgeDestroyed", lambda e: e["bridge"]["id"] == "conf-bridge-2")
    assert t.lines(bridge_events(ari.events)) == [
        "ChannelEnteredBridge bridge=conf-bridge['caller'] channel=caller:Up",
        # Destroyed with its member in it: the member leaves, and with it the application's
        # interest in the bridge, before the bridge goes: no BridgeDestroyed.
        "ChannelLeftBridge bridge=conf-bridge[] channel=caller:Up",
        "ChannelEnteredBridge bridge=conf-bridge-2['caller'] channel=caller:Up",
        "ChannelLeftBridge bridge=conf-bridge-2[] channel=caller:Up",
        # A member that hung up in it leaves the application following the bridge to its end.
        "BridgeDestroyed bridge=conf-bridge-2[]",
    ]


async def test_a_bridge_is_recorded_to_a_stored_wav_that_can_be_fetched_and_deleted(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ari = switch.ari
    await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-rec-bridge")
    await ari.request("POST", "/bridges/conf-rec-bridge/addChannel", channel=ch)
    started = await ari.request("POST", "/bridges/conf-rec-bridge/record", name="conf-rec", format="wav")
    assert (started.status, started.body) == (201, {"name": "conf-rec", "format": "wav", "state": "queued",
                                                    "target_uri": "bridge:conf-rec-bridge"})
    assert started.headers["Location"] == "/ari/recordings/live/conf-rec"
    busy = await ari.request("POST", "/bridges/conf-rec-bridge/record", name="conf-rec", format="wav")
    assert (busy.status, busy.body) == (409, {"message": RECORDING_EXISTS})
    unknown = await ari.request("POST", "/bridges/conf-rec-bridge/record", name="conf-rec-2", format="mp3")
    assert (unknown.status, unknown.body) == (422, {"message": "specified format is unknown on this system"})
    await ari.wait_event("RecordingStarted")
    live = await ari.request("GET", "/recordings/live/conf-rec")
    assert (live.status, live.body) == (200, {"name": "conf-rec", "format": "wav", "state": "recording",
                                              "target_uri": "bridge:conf-rec-bridge"})
    await asyncio.sleep(1.2)
    assert (await ari.request("POST", "/recordings/live/conf-rec/stop")).status == 204
    finished = await ari.wait_event("RecordingFinished")
    assert finished["recording"]["duration"] == 1  # whole seconds
    stopped = await ari.request("POST", "/recordings/live/conf-rec/stop")
    assert (stopped.status, stopped.body) == (404, {"message": "Recording not found"})

    stored = await ari.request("GET", "/recordings/stored/conf-rec")
    assert (stored.status, stored.body) == (200, {"name": "conf-rec", "format": "wav"})
    listed = await ari.request("GET", "/recordings/stored")
    assert {"name": "conf-rec", "format": "wav"} in listed.body
    file = await ari.request("GET", "/recordings/stored/conf-rec/file")
    assert file.status == 200 and file.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(file.body)) as w:  # 8 kHz mono 16-bit, as Asterisk writes a ulaw call
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert 0.8 < w.getnframes() / 8000 < 2.0
    exists = await ari.request("POST", "/bridges/conf-rec-bridge/record", name="conf-rec", format="wav")
    assert (exists.status, exists.body) == (409, {"message": RECORDING_EXISTS})

    assert (await ari.request("DELETE", "/recordings/stored/conf-rec")).status == 204
    for method, path in (("DELETE", "/recordings/stored/conf-rec"), ("GET", "/recordings/stored/conf-rec/file")):
        gone = await ari.request(method, path)
        assert (gone.status, gone.body) == (404, {"message": "Recording not found"})
    await ari.request("DELETE", "/bridges/conf-rec-bridge")
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd")
    recordings = [e for e in ari.events if e["type"].startswith("Recording")]
    assert t.lines(recordings) == [
        "RecordingStarted recording=conf-rec.wav(recording)",
        "RecordingFinished recording=conf-rec.wav(done {'duration': 1})",
    ]


async def test_a_snoop_channel_enters_stasis_with_its_args_and_leaves_quietly(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ari = switch.ari
    snoop = await ari.request("POST", f"/channels/{ch}/snoop", app="hotline", spy="in", appArgs="listen,1001",
                              snoopId="conf-snoop")
    assert snoop.status == 200
    t.name("conf-snoop", "snoop")
    assert t.channel(snoop.body) == {
        "id": "snoop", "name": "Snoop/caller-<n>", "state": "Up", "protocol_id": "",
        "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""}, "accountcode": "",
        "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
        "creationtime": "<time>", "language": "en",
    }
    await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-snoop")
    assert (await ari.request("DELETE", "/channels/conf-snoop")).status == 204
    await ari.wait_event("StasisEnd", lambda e: e["channel"]["id"] == "conf-snoop")
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd", lambda e: e["channel"]["id"] == ch)
    await ari.quiet()
    snooped = [e for e in ari.events if (e.get("channel") or {}).get("id") == "conf-snoop"]
    assert t.lines(snooped) == [
        "StasisStart args=['listen', '1001'] channel=snoop:Up",
        "ChannelHangupRequest cause=32 channel=snoop:Up soft=True",
        "StasisEnd channel=snoop:Up",
    ]


async def test_external_media_enters_stasis_on_its_own_joins_a_bridge_only_after_and_sends_rtp(switch: Switch) -> None:
    ch, t = await answered_call(switch)
    ari = switch.ari
    loop = asyncio.get_running_loop()
    sink = _Sink()
    transport, _ = await loop.create_datagram_endpoint(lambda: sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        await ari.request("POST", "/bridges", type="mixing", bridgeId="conf-media-bridge")
        await ari.request("POST", "/bridges/conf-media-bridge/addChannel", channel=ch)
        # ulaw, the caller's own codec: this machine's Asterisk build cannot resample 8 to 16 kHz
        # (docs/asterisk-behaviour.md), and the format is not what is compared here.
        media = await ari.request("POST", "/channels/externalMedia", app="hotline",
                                  external_host=f"127.0.0.1:{port}", format="ulaw", channelId="conf-media")
        assert media.status == 200
        local_port = media.body.get("channelvars", {}).get("UNICASTRTP_LOCAL_PORT", "")
        assert local_port.isdigit()
        t.name("conf-media", "media")
        assert t.channel(media.body) == {
            "id": "media", "name": "UnicastRTP/127.0.0.1:<port>-0x<ptr>", "state": "Down", "protocol_id": "",
            "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""}, "accountcode": "",
            "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "AppDial2",
                         "app_data": "(Outgoing Line)"},
            "creationtime": "<time>", "language": "en",
            "channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": local_port},
        }
        early = await ari.request("POST", "/bridges/conf-media-bridge/addChannel", channel="conf-media")
        if early.status == 422 or switch.name == "stand-in":
            # Until its own StasisStart the channel is not the application's (FIELD-NOTES). The
            # stand-in holds that window open for 20 ms, so that clients meet it every time;
            # a real Asterisk closes it within a millisecond or so and may have done already.
            assert (early.status, early.body) == (422, {"message": "Channel not in Stasis application"})
            await ari.wait_event("StasisStart", lambda e: e["channel"]["id"] == "conf-media")
            added = await ari.request("POST", "/bridges/conf-media-bridge/addChannel", channel="conf-media")
            assert added.status == 204
        else:
            assert early.status == 204
        for _ in range(50):
            if len(sink.packets) >= 5:
                break
            await asyncio.sleep(0.02)
        assert len(sink.packets) >= 5
        assert {p[1] & 0x7F for p in sink.packets} == {0} and {len(p) - 12 for p in sink.packets} == {160}
        var = await ari.request("GET", "/channels/conf-media/variable", variable="UNICASTRTP_LOCAL_PORT")
        assert (var.status, var.body) == (200, {"value": local_port})
        assert (await ari.request("DELETE", "/channels/conf-media")).status == 204
        await ari.wait_event("ChannelDestroyed", lambda e: e["channel"]["id"] == "conf-media")
    finally:
        transport.close()
    await ari.request("DELETE", "/bridges/conf-media-bridge")
    await ari.request("DELETE", f"/channels/{ch}")
    await ari.wait_event("StasisEnd", lambda e: e["channel"]["id"] == ch)
    medias = [e for e in ari.events if (e.get("channel") or e.get("peer") or {}).get("id") == "conf-media"]
    assert t.lines(medias) == [
        "Dial dialstatus='' dialstring='127.0.0.1:<port>/c(ulaw)' forward='' peer=media:Down",
        "ChannelStateChange channel=media:Up",
        "Dial dialstatus='ANSWER' dialstring='127.0.0.1:<port>/c(ulaw)' forward='' peer=media:Up",
        "StasisStart args=[] channel=media:Up",
        "ChannelEnteredBridge bridge=conf-media-bridge['caller', 'media'] channel=media:Up",
        "ChannelConnectedLine channel=media:Up",
        "ChannelHangupRequest cause=32 channel=media:Up soft=True",
        "ChannelLeftBridge bridge=conf-media-bridge['caller'] channel=media:Up",
        "StasisEnd channel=media:Up",
        "ChannelDestroyed cause=16 cause_txt='Normal Clearing' channel=media:Up",
    ]
